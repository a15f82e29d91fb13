"""`distillrec serve`: a saved model behind an HTTP API, with live feedback, new items by text and explanations.

Modules in the order a request meets them: `app` (routes, keys, limits, metrics) -> `service` (users' live
histories, feedback, posted items, explanations, erasure, reload) -> `engine` (one loaded model, its item rows and
index) -> `index` (exact or faiss top-k) and `knowledge` (the teacher folder's text) -> `store` (the durable
event store, SQLite). Needs the `serve` extra (`pip install -e '.[serve]'`: fastapi, uvicorn, faiss).
"""

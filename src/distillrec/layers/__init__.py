"""Building blocks below every model and loss: SASRec blocks, the full-softmax loss, PCA compression."""

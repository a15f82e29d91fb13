"""The students by name: an explicit dict (no registration on import) and a strict constructor.

Input: a student name and keyword hyperparameters. Output: an unfitted `Student` (`make_student`).
"""

from __future__ import annotations

from distillrec.students.base import Student
from distillrec.students.gru4rec import GRU4Rec
from distillrec.students.mf import MatrixFactorization
from distillrec.students.sasrec import SASRecStudent
from distillrec.students.two_tower import TwoTower

STUDENTS: dict[str, type[Student]] = {
    "sasrec": SASRecStudent,
    "gru4rec": GRU4Rec,
    "mf": MatrixFactorization,
    "two_tower": TwoTower,
}


def student_params(name: str) -> list[str]:
    """The constructor arguments of a registered student: its hyperparameters (`students/params.py`), after
    `text_embeddings` for a student with a text tower."""
    if name not in STUDENTS:
        raise ValueError(f"unknown student {name!r}; choose one of {sorted(STUDENTS)}")
    cls = STUDENTS[name]
    return ["text_embeddings"] * cls.needs_text + list(cls.params_model.model_fields)


def make_student(name: str, **params) -> Student:
    """An unfitted student; an unknown name or hyperparameter is an error listing the valid ones."""
    valid = student_params(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for student {name!r}; valid: {valid}")
    return STUDENTS[name](**params)

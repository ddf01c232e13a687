"""The expert's baseline on frozen features: scikit-learn's logistic regression (lbfgs) on standardised features,
C over 1e-4 … 1e4 (half a decade apart) chosen by stratified 5-fold cross-validation on the training split
(accuracy), class_weight="balanced" when the classes are imbalanced above 3:1, refitted on the whole training
split and scored on the validation split: LogisticRegressionCV, which solves each fold along the path of C with
warm starts (a grid search from scratch at every C costs minutes on a CPU for the same answer). Imports nothing
from the studio."""
from __future__ import annotations

import time
import warnings

import numpy as np

IMBALANCE_RATIO = 3.0
CS = np.logspace(-4, 4, 17)  # half a decade apart


def logistic_regression(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler
    counts = np.bincount(y_train)
    counts = counts[counts > 0]
    balanced = counts.max() > IMBALANCE_RATIO * counts.min()
    folds = min(5, int(counts.min()))
    started = time.perf_counter()
    scaler = StandardScaler().fit(x_train)
    model = LogisticRegressionCV(Cs=CS, cv=StratifiedKFold(folds, shuffle=True, random_state=0), scoring="accuracy",
                                 max_iter=1000, class_weight="balanced" if balanced else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.8+ announcing parameter changes, not news
        model.fit(scaler.transform(x_train), y_train)
    predicted = model.predict(scaler.transform(x_val))
    return {"accuracy": float(accuracy_score(y_val, predicted)),
            "macro_f1": float(f1_score(y_val, predicted, average="macro")),
            "C": float(np.ravel(model.C_)[0]), "class_weight_balanced": bool(balanced), "folds": folds,
            "seconds": time.perf_counter() - started}

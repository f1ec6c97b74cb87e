"""The refit contract of scikit-learn estimators (issue 19, class 8), reusable by every estimator's tests: a `fit` that
raises leaves `get_params()`, every fitted attribute and the outputs of the estimator's methods exactly as before.

    from refit_contract import assert_failed_fit_changes_nothing
    assert_failed_fit_changes_nothing(fitted, lambda est: est.fit(bad_X), X_probe, ("score_samples", "decision_function"))
"""
import copy

import numpy as np


def _fitted_attributes(est)->dict:
    "Every attribute a fit sets (scikit-learn's trailing underscore, and private ones), as they are now."
    return {k: v for k, v in vars(est).items() if k.endswith("_") or k.startswith("_")}


def _frozen(value):
    "A comparable copy of `value`: arrays copied, a Keras model as (its id, its weights), the rest deep-copied."
    if isinstance(value, np.ndarray): return ("array", value.copy())
    if hasattr(value, "get_weights") and hasattr(value, "built"): return ("model", id(value), [w.copy() for w in value.get_weights()])
    if isinstance(value, (list, tuple)) and any(hasattr(v, "get_weights") for v in value): return ("models", [_frozen(v) for v in value])
    try: return ("value", copy.deepcopy(value))
    except Exception: return ("object", id(value))


def _same(a, b)->bool:
    "Whether two `_frozen` values are exactly equal (NaN equal to NaN, dtypes and shapes too)."
    if type(a) is not type(b) or a[0] != b[0]: return False
    if a[0] == "array": return a[1].dtype == b[1].dtype and a[1].shape == b[1].shape and np.array_equal(a[1], b[1], equal_nan=a[1].dtype.kind in "fc")
    if a[0] == "models": return len(a[1]) == len(b[1]) and all(_same(x, y) for x, y in zip(a[1], b[1]))
    if a[0] == "model": return a[1] == b[1] and len(a[2]) == len(b[2]) and all(np.array_equal(x, y) for x, y in zip(a[2], b[2]))
    try: return bool(a[1] == b[1]) if not isinstance(a[1], dict) else _same_dict(a[1], b[1])
    except Exception: return False


def _same_dict(a:dict, b:dict)->bool:
    return a.keys() == b.keys() and all(_same(_frozen(a[k]), _frozen(b[k])) for k in a)


def snapshot(est, X_probe, methods=("transform",))->dict:
    "What the contract compares: the parameters, every fitted attribute, and each method's output on `X_probe`."
    outputs = {}
    for m in methods:
        try: outputs[m] = ("ok", np.array(getattr(est, m)(X_probe), copy=True))
        except Exception as e: outputs[m] = ("raised", type(e).__name__)
    return {"params": est.get_params(deep=False), "fitted": {k: _frozen(v) for k, v in _fitted_attributes(est).items()},
            "outputs": outputs}


def assert_unchanged(before:dict, after:dict, what:str=""):
    "Raise an AssertionError naming every difference between two snapshots."
    problems = []
    if not _same_dict(before["params"], after["params"]): problems.append(f"get_params(): {before['params']} -> {after['params']}")
    for k in sorted(set(before["fitted"]) | set(after["fitted"])):
        if k not in after["fitted"]: problems.append(f"{k} was removed")
        elif k not in before["fitted"]: problems.append(f"{k} was added")
        elif not _same(before["fitted"][k], after["fitted"][k]): problems.append(f"{k} changed")
    for m, out in before["outputs"].items():
        new = after["outputs"][m]
        if out[0] != new[0] or (out[0] == "raised" and out[1] != new[1]) or (
                out[0] == "ok" and (out[1].dtype != new[1].dtype or not np.array_equal(out[1], new[1], equal_nan=True))):
            problems.append(f"{m}() output changed")
    assert not problems, f"{what}: " + "; ".join(problems)


def assert_failed_fit_changes_nothing(est, failing_fit, X_probe, methods=("transform",), expect=Exception):
    "Run `failing_fit(est)`, which must raise `expect`, and check that `est` is exactly as before."
    before = snapshot(est, X_probe, methods)
    raised = None
    try: failing_fit(est)
    except expect as e: raised = e
    assert raised is not None, "the fit was expected to raise"
    assert_unchanged(before, snapshot(est, X_probe, methods), f"after {type(raised).__name__}: {str(raised)[:120]}")
    return raised

"""The registry of named recipes: `register`, `names`, `recipe`."""

import difflib
import inspect
import fnmatch

_RECIPES = {}


def register(fn):
    """Registers a function returning a `Recipe` under the function's name.

    Example:
        >>> @register
        ... def my_arcface():
        ...     return recipe("mobilefacenet_arcface").replace(name="my_arcface", head_args={"margin": 0.4})
    """
    name = fn.__name__
    if name in _RECIPES:
        raise ValueError(f"A recipe named {name!r} is already registered.")
    _RECIPES[name] = fn
    return fn


def names(pattern="*"):
    """Sorted names of the registered recipes that match a glob `pattern`."""
    return sorted(name for name in _RECIPES if fnmatch.fnmatch(name, pattern))


def recipe(name):
    """The `Recipe` registered as `name`; unknown names list the closest ones."""
    if name not in _RECIPES:
        close = difflib.get_close_matches(str(name), list(_RECIPES), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown recipe {name!r}.{hint} Known recipes: {', '.join(names())}.")
    result = _RECIPES[name]()
    if result.name != name:
        raise ValueError(f"Recipe function {name!r} returned a recipe named {result.name!r}.")
    return result


def notes(name):
    """How recipe `name` follows (or departs from) its reference: its function's docstring, else its module's."""
    recipe(name)
    fn = _RECIPES[name]
    return inspect.cleandoc(fn.__doc__ or inspect.getmodule(fn).__doc__ or "")

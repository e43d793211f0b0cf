"""The kernel side of the channel, sent to the kernel as source text after the notebook ran.

The kernel cannot import ``graders`` (the instructor tree is hidden), so this module is read as
text and executed there; it must only use the standard library, torch and safetensors.
Encoding: JSON, with every tensor replaced by ``{"__tensor__": key}`` and stored under ``key``
in one safetensors file beside the JSON; an nn.Module travels as its state_dict.
"""
SHIM = r'''
class __CourseChannel:
    import json as _json, math as _math, pathlib as _pathlib, traceback as _traceback

    def __init__(self, ns):
        self.ns = ns

    def _encode(self, value, tensors):
        import torch
        if isinstance(value, torch.nn.Module):
            value = dict(value.state_dict())
        if isinstance(value, torch.Tensor):
            key = f"t{len(tensors)}"
            tensors[key] = value.detach().to("cpu").contiguous().clone()
            return {"__tensor__": key}
        if isinstance(value, (bool, int, str)) or value is None:
            return value
        if isinstance(value, float):
            return value if self._math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, (list, tuple)):
            return [self._encode(v, tensors) for v in value]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError("only dicts with string keys can be sent to the grader")
            return {k: self._encode(v, tensors) for k, v in value.items()}
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            return self._encode(value.item(), tensors)
        raise TypeError(f"a value of type {type(value).__name__} cannot be sent to the grader")

    def _decode(self, value, tensors):
        if isinstance(value, dict):
            if set(value) == {"__tensor__"}:
                return tensors[value["__tensor__"]]
            if set(value) == {"__float__"}:
                return float(value["__float__"])
            return {k: self._decode(v, tensors) for k, v in value.items()}
        if isinstance(value, list):
            return [self._decode(v, tensors) for v in value]
        return value

    def _answer(self, folder, produce):
        folder = self._pathlib.Path(folder)
        try:
            tensors = {}
            payload = {"value": self._encode(produce(), tensors)}
            if tensors:
                from safetensors.torch import save_file
                save_file(tensors, str(folder / "response.safetensors"))
        except BaseException as err:
            payload = {"error": type(err).__name__, "message": str(err)[:2000]}
        (folder / "response.json").write_text(self._json.dumps(payload))

    def value(self, name, folder):
        def produce():
            if name not in self.ns:
                raise NameError(f"name {name!r} is not defined")
            return self.ns[name]
        self._answer(folder, produce)

    def call(self, name, folder):
        folder = self._pathlib.Path(folder)
        def produce():
            request = self._json.loads((folder / "request.json").read_text())
            tensors = {}
            if (folder / "request.safetensors").exists():
                from safetensors.torch import load_file
                tensors = load_file(str(folder / "request.safetensors"))
            func = self.ns.get(name)
            if not callable(func):
                raise NameError(f"function {name!r} is not defined")
            return func(*self._decode(request["args"], tensors), **self._decode(request["kwargs"], tensors))
        self._answer(folder, produce)

__course_channel__ = __CourseChannel(get_ipython().user_ns)
del __CourseChannel
'''

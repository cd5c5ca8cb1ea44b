"""A trainer model file (JSON, or YAML with PyYAML) as a PyTorch module.

The one definition that torch_eval.py and the PyTorch twins share:

    import torch_model
    spec = torch_model.load_spec("model/presets/resnet20.json")
    net = torch_model.build(spec, (3, 32, 32))   # seeded by torch.manual_seed

The layer named "a.b.c" is the submodule at path a.b.c (plain nn.Module
containers are made for "a" and "a.b"), so `net.state_dict()` holds exactly
the tensors the model-file spec names: NAME.weight, NAME.bias,
NAME.running_mean, NAME.running_var, NAME.num_batches_tracked. Layers run in
file order; each layer's output is kept by name while a later layer still
reads it. Construction follows the spec's init (PyTorch's defaults for
"torch"); a "whiten" conv needs data: call init_whitening(net, images).

Errors in the file are ModelError, naming the layer and the field.
"""
import json
import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
ACTS = ("none", "relu", "gelu")
INITS = ("torch", "glorot", "kaiming_normal", "dirac", "whiten")
REQUIRED = object()

# The fields of each type, with their defaults (REQUIRED: no default). Every
# type also has name and type; every type but add has input, add has inputs.
FIELDS = {
    "conv": {"filters": REQUIRED, "kernel": REQUIRED, "stride": 1, "padding": 0, "bias": True,
             "act": "none", "init": None},
    "dense": {"units": REQUIRED, "bias": True, "act": "none", "scale": 1.0, "init": None},
    "batchnorm": {"momentum": 0.1, "eps": 1e-5, "act": "none", "train_weight": True},
    "relu": {}, "gelu": {}, "flatten": {},
    "maxpool": {"kernel": REQUIRED, "stride": None},
    "avgpool": {"kernel": REQUIRED, "stride": None},
    "globalavgpool": {},
    "dropout": {"p": 0.5},
    "add": {"act": "none"},
    "normalize": {"mean": REQUIRED, "std": REQUIRED},
}
# Values that a field outside a type's list may carry without a warning (a
# writer that emits every field of a flat struct).
EMPTY = (None, "", 0, False, [], {}, "none")


class ModelError(ValueError):
    pass


def load_spec(path):
    """Reads a model file: JSON, or YAML when the name ends in .yaml/.yml."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ModelError(f"{path}: reading YAML needs PyYAML (python3-yaml); or give the JSON form")
        return yaml.safe_load(text)
    try:
        return json.loads(text)
    except ValueError as e:
        raise ModelError(f"{path}: not JSON: {e}")


def _act(x, act):
    if act == "relu":
        return F.relu(x)
    if act == "gelu":
        return F.gelu(x)  # exact (erf) form, PyTorch's default
    return x


def same_pads(size, kernel, stride):
    """TensorFlow's "same": (before, after) for one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv(nn.Conv2d):
    """nn.Conv2d, with TF "same" padding by F.pad and a fused activation."""

    def __init__(self, cin, filters, kernel, stride, padding, bias, act):
        super().__init__(cin, filters, kernel, stride, padding=0 if padding == "same" else padding, bias=bias)
        self.same = padding == "same"
        self.act = act

    def forward(self, x):
        if self.same:
            k, s = self.kernel_size[0], self.stride[0]
            top, bottom = same_pads(x.shape[2], k, s)
            left, right = same_pads(x.shape[3], k, s)
            x = F.pad(x, (left, right, top, bottom))
        return _act(super().forward(x), self.act)


class Dense(nn.Linear):
    """nn.Linear with the product scaled before the bias: act(scale*(x W^T) + b)."""

    def __init__(self, cin, units, bias, scale, act):
        super().__init__(cin, units, bias=bias)
        self.scale, self.act = scale, act

    def forward(self, x):
        if self.scale == 1:
            return _act(super().forward(x), self.act)
        y = F.linear(x, self.weight) * self.scale
        if self.bias is not None:
            y = y + self.bias
        return _act(y, self.act)


class BatchNorm2d(nn.BatchNorm2d):
    def __init__(self, c, eps, momentum, act):
        super().__init__(c, eps=eps, momentum=momentum)
        self.act = act

    def forward(self, x):
        return _act(super().forward(x), self.act)


class BatchNorm1d(nn.BatchNorm1d):
    def __init__(self, c, eps, momentum, act):
        super().__init__(c, eps=eps, momentum=momentum)
        self.act = act

    def forward(self, x):
        return _act(super().forward(x), self.act)


class Act(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.act = act

    def forward(self, x):
        return _act(x, self.act)


class Add(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.act = act

    def forward(self, a, b):
        return _act(a + b, self.act)


class Flatten(nn.Module):
    def forward(self, x):
        return x.flatten(1)


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


class Normalize(nn.Module):
    """(x - mean[c]) / std[c]; the constants are not part of the state_dict."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


class Net(nn.Module):
    """The network of a model file. Layers are submodules at their dotted
    names; forward walks them in file order. The bookkeeping is one
    attribute, _tm, so that layer names cannot collide with it."""

    def __init__(self, spec, input_shape, warn=None):
        super().__init__()
        self._tm = Info(spec.get("name", "") if isinstance(spec, dict) else "", tuple(input_shape))
        _build(self, spec, tuple(input_shape), warn or (lambda msg: None))

    def forward(self, x):
        outs = {}
        prev = x
        for name, mod, srcs, keep, drop in self._tm.plan:
            args = [prev if s is None else x if s == "input" else outs[s] for s in srcs]
            prev = mod(*args)
            if keep:
                outs[name] = prev
            for d in drop:
                del outs[d]
        return prev


class Info:
    """A Net's bookkeeping. plan: (name, module, sources, keep, drop) per
    layer; a source None is the previous layer's output, "input" the
    network's input; keep: a later layer reads the output by name; drop: the
    names no later layer reads."""

    def __init__(self, name, input_shape):
        self.name = name
        self.input_shape = input_shape
        self.output_shape = None
        self.plan = []
        self.types = {}      # layer name -> type
        self.whiten = []     # names of the "whiten" convs, in file order


def _check(cond, where, msg):
    if not cond:
        raise ModelError(f"{where}: {msg}")


def _int(where, field, v, lo=1):
    _check(isinstance(v, int) and not isinstance(v, bool) and v >= lo, where,
           f"{field} {v!r}: want an integer >= {lo}")
    return v


def _num(where, field, v):
    _check(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), where,
           f"{field} {v!r}: want a finite number")
    return float(v)


def _fields(where, layer, typ, warn):
    """The layer's fields with defaults filled in; fields of other types
    must be empty (a warning otherwise)."""
    known = FIELDS[typ]
    out = {}
    for k, default in known.items():
        v = layer.get(k)
        if v is None:
            _check(default is not REQUIRED, where, f"{typ} needs {k}")
            v = default
        out[k] = v
    extra = set(layer) - set(known) - {"name", "type", "input", "inputs"}
    for k in sorted(extra):
        if layer[k] not in EMPTY:
            warn(f"{where}: ignoring {k}={layer[k]!r} (not a field of {typ})")
    return out


def _sources(where, layer, typ, seen):
    if typ == "add":
        srcs = layer.get("inputs")
        _check(isinstance(srcs, list) and len(srcs) == 2, where, f"add needs inputs: [A, B], got {srcs!r}")
        _check(layer.get("input") in (None, ""), where, "add takes inputs, not input")
    else:
        src = layer.get("input")
        srcs = [None if src in (None, "") else src]
        _check(layer.get("inputs") in (None, []), where, f"{typ} takes input, not inputs")
    for s in srcs:
        _check(s is None or s == "input" or s in seen, where,
               f"input {s!r} is not the network input or an earlier layer")
    return srcs


def _place(root, name, mod, where):
    """Adds mod at the dotted path name, making containers on the way."""
    parent = root
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        child = parent._modules.get(part)
        if child is None:
            _check(not hasattr(parent, part), where, f"{'.'.join(parts[:i + 1])!r} cannot be a PyTorch submodule name")
            child = nn.Module()
            parent.add_module(part, child)
        _check(type(child) is nn.Module, where, f"{'.'.join(parts[:i + 1])!r} is a layer, so it cannot hold {name!r}")
        parent = child
    last = parts[-1]
    _check(last not in parent._modules, where, f"{name!r} is already a container of other layers")
    _check(not hasattr(parent, last), where, f"{name!r} cannot be a PyTorch submodule name")
    parent.add_module(last, mod)


def _shape_str(s):
    return "x".join(map(str, s))


def _make(where, typ, f, shape, model_init):
    """The module of one layer and its output shape. shape is (C, H, W) for
    images, (F,) for flat vectors."""
    image = len(shape) == 3
    if typ == "conv":
        _check(image, where, f"conv needs an image input, got flat {_shape_str(shape)}")
        c, h, w = shape
        filters, k = _int(where, "filters", f["filters"]), _int(where, "kernel", f["kernel"])
        s, pad = _int(where, "stride", f["stride"]), f["padding"]
        if pad == "valid":
            pad = 0
        _check(pad == "same" or (isinstance(pad, int) and not isinstance(pad, bool) and pad >= 0), where,
               f"padding {pad!r}: want an integer >= 0, \"valid\" or \"same\"")
        _check(isinstance(f["bias"], bool), where, f"bias {f['bias']!r}: want true or false")
        _check(f["act"] in ACTS, where, f"act {f['act']!r}: want one of {', '.join(ACTS)}")
        init = f["init"] or model_init
        _check(init in INITS, where, f"init {init!r}: want one of {', '.join(INITS)}")
        if pad == "same":
            oh, ow = -(-h // s), -(-w // s)
        else:
            oh, ow = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
        _check(oh >= 1 and ow >= 1, where, f"kernel {k} stride {s} padding {pad!r} on {_shape_str(shape)} leaves nothing")
        if init == "whiten":
            _check(filters == 2 * c * k * k, where, f"init whiten needs filters = 2*C*K*K = {2 * c * k * k}, got {filters}")
        mod = Conv(c, filters, k, s, pad, f["bias"], f["act"])
        _init(mod, init)
        return mod, (filters, oh, ow), init
    if typ == "dense":
        _check(not image, where, f"dense needs a flat input, got {_shape_str(shape)} (add flatten or globalavgpool)")
        units = _int(where, "units", f["units"])
        _check(isinstance(f["bias"], bool), where, f"bias {f['bias']!r}: want true or false")
        _check(f["act"] in ACTS, where, f"act {f['act']!r}: want one of {', '.join(ACTS)}")
        init = f["init"] or model_init
        _check(init in ("torch", "glorot", "kaiming_normal"), where, f"init {init!r} is not for dense layers")
        mod = Dense(shape[0], units, f["bias"], _num(where, "scale", f["scale"]), f["act"])
        _init(mod, init)
        return mod, (units,), init
    if typ == "batchnorm":
        mom, eps = _num(where, "momentum", f["momentum"]), _num(where, "eps", f["eps"])
        _check(0 <= mom <= 1, where, f"momentum {mom}: want 0..1 (PyTorch's meaning)")
        _check(eps > 0, where, f"eps {eps}: want > 0")
        _check(f["act"] in ACTS, where, f"act {f['act']!r}: want one of {', '.join(ACTS)}")
        _check(isinstance(f["train_weight"], bool), where, f"train_weight {f['train_weight']!r}: want true or false")
        mod = (BatchNorm2d if image else BatchNorm1d)(shape[0], eps, mom, f["act"])
        mod.weight.requires_grad_(f["train_weight"])
        return mod, shape, None
    if typ in ("relu", "gelu"):
        return Act(typ), shape, None
    if typ == "add":
        _check(f["act"] in ACTS, where, f"act {f['act']!r}: want one of {', '.join(ACTS)}")
        return Add(f["act"]), shape, None
    if typ == "flatten":
        return Flatten(), (math.prod(shape),), None
    if typ in ("maxpool", "avgpool"):
        _check(image, where, f"{typ} needs an image input, got flat {_shape_str(shape)}")
        k = _int(where, "kernel", f["kernel"])
        s = k if f["stride"] is None else _int(where, "stride", f["stride"])
        oh, ow = (shape[1] - k) // s + 1, (shape[2] - k) // s + 1
        _check(oh >= 1 and ow >= 1, where, f"kernel {k} on {_shape_str(shape)} leaves nothing")
        mod = nn.MaxPool2d(k, s) if typ == "maxpool" else nn.AvgPool2d(k, s)
        return mod, (shape[0], oh, ow), None
    if typ == "globalavgpool":
        _check(image, where, f"globalavgpool needs an image input, got flat {_shape_str(shape)}")
        return GlobalAvgPool(), (shape[0],), None
    if typ == "dropout":
        p = _num(where, "p", f["p"])
        _check(0 <= p < 1, where, f"p {p}: want 0 <= p < 1")
        return nn.Dropout(p), shape, None
    if typ == "normalize":
        _check(image, where, f"normalize needs an image input, got flat {_shape_str(shape)}")
        mean, std = f["mean"], f["std"]
        for k, v in (("mean", mean), ("std", std)):
            _check(isinstance(v, list) and len(v) == shape[0], where, f"{k} {v!r}: want {shape[0]} numbers")
            for x in v:
                _num(where, k, x)
        _check(all(x != 0 for x in std), where, "std has a zero")
        return Normalize(mean, std), shape, None
    raise AssertionError(typ)


def _init(mod, init):
    """Weights and biases by the spec's init names (BatchNorm keeps PyTorch's
    weight 1, bias 0). "torch" is what construction already did."""
    if init == "glorot":
        nn.init.xavier_uniform_(mod.weight)
    elif init == "kaiming_normal":
        nn.init.kaiming_normal_(mod.weight, mode="fan_in", nonlinearity="relu")
    elif init == "dirac":
        w = mod.weight.data
        nn.init.dirac_(w[:w.size(1)])
    elif init == "whiten":
        mod.weight.requires_grad_(False)  # set by init_whitening
    if init != "torch" and mod.bias is not None:
        nn.init.zeros_(mod.bias)


def _build(net, spec, shape, warn):
    _check(isinstance(spec, dict), "model", "want an object with layers")
    layers = spec.get("layers")
    _check(isinstance(layers, list) and layers, "model", "want a non-empty list of layers")
    model_init = spec.get("init") or "torch"
    _check(model_init in INITS, "model", f"init {model_init!r}: want one of {', '.join(INITS)}")
    info = net._tm
    shapes = {"input": shape}
    prev = shape
    for i, layer in enumerate(layers):
        _check(isinstance(layer, dict), f"layer {i + 1}", "want an object")
        name, typ = layer.get("name"), layer.get("type")
        where = f"layer {i + 1} ({name!r})"
        _check(isinstance(name, str) and NAME.match(name), where,
               "name: want dotted segments of letters, digits and _")
        _check(name != "input", where, "the name \"input\" means the network's input")
        _check(name not in shapes, where, "the name is used twice")
        _check(typ in FIELDS, where, f"type {typ!r}: want one of {', '.join(FIELDS)}")
        f = _fields(where, layer, typ, warn)
        srcs = _sources(where, layer, typ, shapes)
        ins = [prev if s is None else shapes[s] for s in srcs]
        if typ == "add":
            _check(ins[0] == ins[1], where,
                   f"inputs have shapes {_shape_str(ins[0])} and {_shape_str(ins[1])}; they must match")
        mod, out, init = _make(where, typ, f, ins[0], model_init)
        _place(net, name, mod, where)
        info.plan.append((name, mod, srcs, False, []))
        info.types[name] = typ
        if init == "whiten":
            info.whiten.append(name)
        shapes[name] = out
        prev = out
    info.output_shape = prev
    # Keep an output while a later layer reads it by name; drop it after the last.
    last = {}
    for i, (_, _, srcs, _, _) in enumerate(info.plan):
        for s in srcs:
            if s not in (None, "input"):
                last[s] = i
    index = {p[0]: i for i, p in enumerate(info.plan)}
    for name, i in last.items():
        j = index[name]
        info.plan[j] = info.plan[j][:3] + (True,) + info.plan[j][4:]
        info.plan[i][4].append(name)


def build(spec, input_shape=(3, 32, 32), warn=None):
    """The Net of a model spec (a dict, as read from JSON) for images of
    input_shape (C, H, W). warn(msg) hears about ignored fields."""
    return Net(spec, input_shape, warn)


def expected_keys(spec):
    """The state_dict keys the spec's naming rule gives, from the JSON alone:
    NAME.weight (+ NAME.bias) for conv and dense, the five BatchNorm tensors,
    nothing for the other types."""
    keys = []
    for layer in spec["layers"]:
        name, typ = layer["name"], layer["type"]
        if typ in ("conv", "dense"):
            keys.append(f"{name}.weight")
            if layer.get("bias", True):
                keys.append(f"{name}.bias")
        elif typ == "batchnorm":
            keys += [f"{name}.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    return keys


def count_params(net):
    return sum(p.numel() for p in net.parameters())


def init_whitening(net, images, eps=5e-4):
    """Sets each "whiten" conv, in file order, from images [N, C, H, W]:
    the eigenvectors of the (uncentred) covariance of the KxK patches (stride
    1, no padding) of the conv's input, scaled by 1/sqrt(eigenvalue + eps),
    largest first, then their negation (as airbench's init_whitening_conv);
    a zero bias."""
    for name in net._tm.whiten:
        conv = net.get_submodule(name)
        got = {}
        hook = conv.register_forward_pre_hook(lambda m, inp: got.setdefault("x", inp[0]))
        try:
            with torch.no_grad():
                net(images)
        finally:
            hook.remove()
        x = got["x"].double()
        c, k = x.shape[1], conv.kernel_size[0]
        patches = x.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
        cov = patches.T @ patches / len(patches)
        vals, vecs = torch.linalg.eigh(cov)
        vals, vecs = vals.flip(0), vecs.T.flip(0)
        w = (vecs / torch.sqrt(vals.clamp_min(0) + eps)[:, None]).reshape(c * k * k, c, k, k)
        with torch.no_grad():
            conv.weight.copy_(torch.cat((w, -w)).float())
            if conv.bias is not None:
                conv.bias.zero_()

"""Weight initialisers, one small function per scheme, plus one entry point for a model.

Each function fills a weight tensor in place and returns it, like ``torch.nn.init``. The
formula, the paper and the equation it reproduces are in each docstring. ``fan_in`` and
``fan_out`` follow PyTorch: for a weight of shape ``(out, in, *kernel)`` the fan-in is
``in * prod(kernel)`` and the fan-out is ``out * prod(kernel)``.

Every random initialiser takes an optional ``torch.Generator`` so that a scheme applied to a
model is reproducible on its own, whatever else has drawn random numbers before it.

>>> w = torch.empty(256, 512)
>>> _ = xavier_uniform_(w, generator=torch.Generator().manual_seed(0))
>>> bool(w.abs().max() <= math.sqrt(6 / (512 + 256)))
True
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
from torch import nn

__all__ = [
    "fans",
    "gain_for",
    "zero_",
    "constant_",
    "normal_",
    "old_uniform_",
    "xavier_uniform_",
    "xavier_normal_",
    "xavier_fanin_normal_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "orthogonal_",
    "he_std",
    "weight_std",
    "SCHEMES",
    "MODEL_INITS",
    "register",
    "initialise",
    "draw",
    "BIAS_SCHEMES",
    "init_layers",
    "apply_init",
]

#: Gains of torch.nn.init.calculate_gain for the activations this study uses.
_GAINS = {
    "identity": 1.0,
    "linear": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
}


def gain_for(nonlinearity: str) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    identity/linear and sigmoid: 1; tanh: 5/3; relu: sqrt(2) (He et al. 2015, Eq. 10).

    >>> round(gain_for("relu") ** 2, 6)
    2.0
    """
    try:
        return _GAINS[nonlinearity]
    except KeyError:
        raise ValueError(
            f"unknown nonlinearity {nonlinearity!r}; allowed: {', '.join(sorted(_GAINS))}"
        ) from None


def fans(tensor: torch.Tensor) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)``.

    >>> fans(torch.empty(16, 3, 5, 5))
    (75, 400)
    """
    if tensor.dim() < 2:
        raise ValueError(f"fan-in and fan-out need a weight with at least 2 dimensions, got shape {tuple(tensor.shape)}")
    receptive = math.prod(tensor.shape[2:]) if tensor.dim() > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: torch.Tensor, mode: str) -> int:
    fan_in, fan_out = fans(tensor)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


@torch.no_grad()
def zero_(tensor: torch.Tensor) -> torch.Tensor:
    """W = 0. Every unit of a layer then computes the same function (see the zero-init chapter).

    >>> zero_(torch.ones(2, 3)).abs().sum().item()
    0.0
    """
    return tensor.zero_()


@torch.no_grad()
def constant_(tensor: torch.Tensor, value: float) -> torch.Tensor:
    """W = c everywhere: non-zero but as symmetric as zero init.

    >>> constant_(torch.empty(2, 2), 0.5).sum().item()
    2.0
    """
    return tensor.fill_(value)


@torch.no_grad()
def normal_(
    tensor: torch.Tensor, std: float = 1.0, mean: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """W ~ N(mean, std^2): the naive "random" init, e.g. N(0, 1) or N(0, 0.01^2).

    >>> w = normal_(torch.empty(1000, 1000), std=0.01, generator=torch.Generator().manual_seed(0))
    >>> round(w.std().item(), 3)
    0.01
    """
    return tensor.normal_(mean, std, generator=generator)


@torch.no_grad()
def old_uniform_(tensor: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The pre-2010 practice: W ~ U[-1/sqrt(n_in), 1/sqrt(n_in)], so n_in Var[W] = 1/3.

    Glorot & Bengio (2010), Eq. 1, the "standard" initialisation they compare against.
    This is also PyTorch's default for ``nn.Linear`` and ``nn.ConvNd`` weights:
    ``kaiming_uniform_(w, a=sqrt(5))`` has bound sqrt(6 / (1 + 5)) * sqrt(3 / n_in) = 1/sqrt(n_in).
    (PyTorch's default *bias* is U[-1/sqrt(n_in), 1/sqrt(n_in)] too, where Glorot used 0.)

    >>> w = old_uniform_(torch.empty(10, 400), generator=torch.Generator().manual_seed(0))
    >>> bool(w.abs().max() <= 1 / 20)
    True
    """
    fan_in, _ = fans(tensor)
    bound = 1.0 / math.sqrt(fan_in)
    return tensor.uniform_(-bound, bound, generator=generator)


@torch.no_grad()
def xavier_uniform_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Glorot's normalised init: W ~ U[-a, a] with a = gain * sqrt(6 / (n_in + n_out)).

    Glorot & Bengio (2010), Eq. 16; its variance 2 / (n_in + n_out) is their Eq. 12, the
    compromise between the forward condition n_in Var[W] = 1 and the backward one
    n_out Var[W] = 1. Same as ``torch.nn.init.xavier_uniform_``.

    >>> w = xavier_uniform_(torch.empty(300, 300), generator=torch.Generator().manual_seed(0))
    >>> round(w.var().item() * 300, 2)
    1.0
    """
    fan_in, fan_out = fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return tensor.uniform_(-bound, bound, generator=generator)


@torch.no_grad()
def xavier_normal_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """W ~ N(0, gain^2 * 2 / (n_in + n_out)): Glorot & Bengio (2010), Eq. 12, Gaussian form.

    Same as ``torch.nn.init.xavier_normal_``.

    >>> w = xavier_normal_(torch.empty(300, 300), generator=torch.Generator().manual_seed(0))
    >>> round(w.var().item() * 300, 2)
    1.0
    """
    fan_in, fan_out = fans(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return tensor.normal_(0.0, std, generator=generator)


@torch.no_grad()
def xavier_fanin_normal_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """"Xavier" as He et al. (2015) define it: W ~ N(0, gain^2 / n_in), i.e. n_in Var[W] = 1.

    He et al. (2015), Sec. 2.2, compare against this fan-in-only rule (also the article's
    ``torch.randn(n_in, n_out) * sqrt(1 / n_in)``). It equals Glorot's 2 / (n_in + n_out)
    wherever n_in = n_out, so the two differ only at layers that change width.

    >>> w = xavier_fanin_normal_(torch.empty(100, 400), generator=torch.Generator().manual_seed(0))
    >>> round(w.var().item() * 400, 1)
    1.0
    """
    fan_in, _ = fans(tensor)
    return tensor.normal_(0.0, gain / math.sqrt(fan_in), generator=generator)


def he_std(tensor: torch.Tensor, mode: str = "fan_in", gain: float = math.sqrt(2.0)) -> float:
    """He et al.'s standard deviation gain / sqrt(n): n the fan-in (Eq. 10, the forward
    condition) or the fan-out (Eq. 14, the backward one, which the Fixup code uses); gain
    sqrt(2) for ReLU. The one formula behind :func:`kaiming_normal_`, the ResNets' He init
    and Fixup's scaled branches.

    >>> round(he_std(torch.empty(16, 16, 3, 3), "fan_out"), 6)
    0.117851
    """
    return gain / math.sqrt(_fan(tensor, mode))


@torch.no_grad()
def kaiming_normal_(
    tensor: torch.Tensor,
    gain: float = math.sqrt(2.0),
    mode: str = "fan_in",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """He init: W ~ N(0, gain^2 / n) with n the fan-in (or fan-out); gain sqrt(2) for ReLU.

    He et al. (2015), Eq. 10 (forward, n = k^2 c = fan-in: (1/2) n Var[W] = 1) and Eq. 14
    (backward, n = k^2 d = fan-out). Same as ``torch.nn.init.kaiming_normal_`` with
    ``nonlinearity='relu'``; pass ``gain=gain_for(...)`` for other activations.

    >>> w = kaiming_normal_(torch.empty(256, 512), generator=torch.Generator().manual_seed(0))
    >>> round(w.var().item() * 512, 1)
    2.0
    """
    return tensor.normal_(0.0, he_std(tensor, mode, gain), generator=generator)


@torch.no_grad()
def kaiming_uniform_(
    tensor: torch.Tensor,
    gain: float = math.sqrt(2.0),
    mode: str = "fan_in",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """He init, uniform form: W ~ U[-b, b] with b = gain * sqrt(3 / n), same variance as
    ``kaiming_normal_`` (He et al. 2015, Eq. 10). Same as ``torch.nn.init.kaiming_uniform_``.

    >>> w = kaiming_uniform_(torch.empty(256, 512), generator=torch.Generator().manual_seed(0))
    >>> bool(w.abs().max() <= math.sqrt(6 / 512))
    True
    """
    bound = gain * math.sqrt(3.0 / _fan(tensor, mode))
    return tensor.uniform_(-bound, bound, generator=generator)


@torch.no_grad()
def orthogonal_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A (semi-)orthogonal matrix times ``gain``: Saxe, McClelland & Ganguli (2014).

    Trailing dimensions are flattened, a Gaussian matrix is QR-factorised and its Q
    sign-corrected by diag(R), exactly as ``torch.nn.init.orthogonal_``. LSUV (Mishkin &
    Matas 2016, Algorithm 1) starts from this.

    >>> w = orthogonal_(torch.empty(64, 64), generator=torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(w @ w.T, torch.eye(64), atol=1e-5))
    True
    """
    return nn.init.orthogonal_(tensor, gain=gain, generator=generator)


def _with_generator(fn: Callable, **fixed) -> Callable:
    def init(tensor: torch.Tensor, generator: torch.Generator | None = None, **kw):
        return fn(tensor, generator=generator, **{**fixed, **kw})

    init.__doc__ = fn.__doc__
    return init


#: Weight schemes by name. Each takes ``(weight, generator=None, **options)``.
SCHEMES: dict[str, Callable] = {
    "zero": lambda w, generator=None: zero_(w),
    "constant": lambda w, generator=None, value=0.01: constant_(w, value),
    "normal": _with_generator(normal_),
    "old-uniform": _with_generator(old_uniform_),
    "xavier-uniform": _with_generator(xavier_uniform_),
    "xavier-normal": _with_generator(xavier_normal_),
    "xavier-fanin": _with_generator(xavier_fanin_normal_),
    "kaiming-normal": _with_generator(kaiming_normal_),
    "kaiming-uniform": _with_generator(kaiming_uniform_),
    "orthogonal": _with_generator(orthogonal_),
}

#: Bias schemes by name: "zero" (Glorot's choice), "normal" (N(0, bias_std^2)),
#: "old-uniform" (PyTorch's default bias U[-1/sqrt(n_in), 1/sqrt(n_in)]).
BIAS_SCHEMES = ("zero", "normal", "old-uniform")


def init_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The layers an init scheme applies to: every ``nn.Linear`` and ``nn.Conv1d/2d/3d``,
    in module registration order, with their qualified names."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            yield name, module


@torch.no_grad()
def apply_init(
    model: nn.Module,
    scheme: str,
    *,
    bias: str = "zero",
    bias_std: float = 1.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    **options,
) -> nn.Module:
    """Apply the weight scheme ``scheme`` (a key of :data:`SCHEMES`) and the bias scheme
    ``bias`` (one of :data:`BIAS_SCHEMES`) to every Linear and Conv layer of ``model``.

    ``options`` go to the weight scheme (e.g. ``gain=``, ``std=``, ``value=``, ``mode=``).
    Random draws come from ``generator``, or from a new one seeded with ``seed``; the scheme
    "pytorch-default" is not here on purpose: a freshly built model already has it.

    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> _ = apply_init(net, "zero")
    >>> sum(p.abs().sum().item() for p in net.parameters())
    0.0
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
    if bias not in BIAS_SCHEMES:
        raise ValueError(f"unknown bias scheme {bias!r}; allowed: {', '.join(BIAS_SCHEMES)}")
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(seed)
    layers = list(init_layers(model))
    if not layers:
        raise ValueError("the model has no Linear or Conv layer to initialise")
    for _, layer in layers:
        SCHEMES[scheme](layer.weight, generator=generator, **options)
        if layer.bias is None:
            continue
        if bias == "zero":
            layer.bias.zero_()
        elif bias == "normal":
            layer.bias.normal_(0.0, bias_std, generator=generator)
        else:
            bound = 1.0 / math.sqrt(fans(layer.weight)[0])
            layer.bias.uniform_(-bound, bound, generator=generator)
    return model


def weight_std(scheme: str, fan_in: int, fan_out: int, gain: float | None = None) -> float:
    """The standard deviation of the weights that ``scheme`` draws for a layer with these
    fans (the uniform schemes' U[-b, b] has std b / sqrt(3)); ``gain`` None: the scheme's
    default (Xavier and orthogonal 1, He sqrt 2).

    >>> n = 400
    >>> [round(weight_std(s, n, n) ** 2 * n, 6) for s in ("old-uniform", "xavier-uniform", "kaiming-normal")]
    [0.333333, 1.0, 2.0]
    """
    if scheme == "old-uniform":
        return 1.0 / math.sqrt(fan_in) / math.sqrt(3.0)
    if scheme in ("xavier-uniform", "xavier-normal"):
        return (1.0 if gain is None else gain) * math.sqrt(2.0 / (fan_in + fan_out))
    if scheme == "xavier-fanin":
        return (1.0 if gain is None else gain) / math.sqrt(fan_in)
    if scheme in ("kaiming-normal", "kaiming-uniform"):
        return (math.sqrt(2.0) if gain is None else gain) / math.sqrt(fan_in)
    raise ValueError(f"no fan-based std for scheme {scheme!r}; allowed: old-uniform, xavier-uniform, "
                     "xavier-normal, xavier-fanin, kaiming-normal, kaiming-uniform")


# --------------------------------------------------------------------------- model inits

#: Every init a chapter applies to a whole model, by name: ``MODEL_INITS[name](model, seed=...,
#: **options)`` initialises ``model`` in place and returns it. The layer schemes of
#: :data:`SCHEMES` are here under their own names (through :func:`apply_init`); the entries
#: below add the schemes that need more than one rule per layer. Chapters label their
#: conditions as they like, but every label maps to one of these names.
MODEL_INITS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable:
    """Add a model init to :data:`MODEL_INITS` under ``name`` (a decorator)."""

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODEL_INITS:
            raise ValueError(f"model init {name!r} is registered twice")
        MODEL_INITS[name] = fn
        return fn

    return add


def _layer_scheme(scheme: str) -> Callable[..., nn.Module]:
    def init(model: nn.Module, *, seed: int | None = None, **options) -> nn.Module:
        return apply_init(model, scheme, seed=seed, **options)

    init.__doc__ = f"{scheme!r} on every Linear and Conv layer (:func:`apply_init`; options: bias, gain, ...)."
    return init


for _scheme in SCHEMES:
    register(_scheme)(_layer_scheme(_scheme))


@register("zero-weights-random-bias")
def _zero_weights_random_bias(model: nn.Module, *, seed: int | None = None, bias_std: float = 1.0) -> nn.Module:
    """Weights 0, biases N(0, bias_std^2): the zero-init chapter's second way to fail."""
    return apply_init(model, "zero", bias="normal", bias_std=bias_std, seed=seed)


@register("lsuv")
def _lsuv(model: nn.Module, *, seed: int | None = None, batch: torch.Tensor, **options) -> nn.Module:
    """LSUV (Mishkin & Matas 2016, Algorithm 1) on ``batch``: :func:`initstudy.core.lsuv.lsuv_init`."""
    from initstudy.core.lsuv import lsuv_init

    lsuv_init(model, batch, seed=seed, **options)
    return model


def _resnet_init(kind: str) -> Callable[..., nn.Module]:
    def init(model: nn.Module, *, seed: int | None = None, fan: str = "fan_out") -> nn.Module:
        from initstudy.core.resnets import init_resnet

        return init_resnet(model, kind, fan=fan, seed=seed)

    init.__doc__ = f"The ResNets' {kind!r} init (:func:`initstudy.core.resnets.init_resnet`)."
    return init


#: The residual networks' inits: He normal with the fan-out (the Fixup code's convention),
#: the same with the last BatchNorm of each block at 0, and Fixup with its two ablations.
for _name in ("he-fan-out", "zero-gamma", "fixup", "fixup-no-zero-init", "fixup-no-scaling"):
    register(_name)(_resnet_init(_name))


def initialise(model: nn.Module, name: str, *, seed: int | None = None, **options) -> nn.Module:
    """Initialise ``model`` in place with the model init ``name`` (a key of
    :data:`MODEL_INITS`), its random draws from ``seed``.

    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> _ = initialise(net, "zero-weights-random-bias", seed=0)
    >>> float(net[0].weight.detach().abs().sum()), bool(net[0].bias.detach().abs().sum() > 0)
    (0.0, True)
    """
    try:
        fn = MODEL_INITS[name]
    except KeyError:
        raise ValueError(f"unknown init {name!r}; allowed: {', '.join(MODEL_INITS)}") from None
    return fn(model, seed=seed, **options)


def draw(build: Callable[[], nn.Module], name: str, seeds, **options) -> list[nn.Module]:
    """K members at once: for each seed, ``torch.manual_seed(seed)``, ``build()`` and
    :func:`initialise` with that seed, the form every chapter's ensemble takes.

    >>> nets = draw(lambda: nn.Linear(3, 2), "xavier-normal", [0, 1, 0])
    >>> torch.equal(nets[0].weight, nets[2].weight), torch.equal(nets[0].weight, nets[1].weight)
    (True, False)
    """
    members = []
    for seed in seeds:
        torch.manual_seed(seed)
        members.append(initialise(build(), name, seed=seed, **options))
    return members

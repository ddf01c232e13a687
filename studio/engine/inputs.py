"""Turning examples into model inputs: image transforms (torchvision v2), tokenised text batches, loaders."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from studio.engine.data import open_rgb
from studio.engine.models import Preprocessing


def image_transform(prep: Preprocessing, augment: bool) -> v2.Compose:
    if augment:  # only when the backbone trains: mild changes that keep the label true for most photos
        geometry = [v2.RandomResizedCrop(prep.image_size, scale=(0.6, 1.0), antialias=True),
                    v2.RandomHorizontalFlip(), v2.ColorJitter(0.2, 0.2, 0.2)]
    else:
        geometry = [v2.Resize(prep.resize_size, antialias=True), v2.CenterCrop(prep.image_size)]
    return v2.Compose([v2.ToImage(), *geometry, v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(list(prep.mean), list(prep.std))])


class ImageFiles(Dataset):
    def __init__(self, paths: list[str], labels: list[int], transform):
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(open_rgb(self.paths[i])), self.labels[i]


class TextBatches:
    """Collates (text, label) pairs into a tokenised, dynamically padded batch."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length

    def encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True,
                                 return_tensors="pt")
        return {k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    def __call__(self, pairs):
        texts, labels = zip(*pairs)
        return self.encode(list(texts)), torch.tensor(labels)


def make_loader(items: list[str], labels: list[int], prep: Preprocessing, *, tokenizer=None, batch_size: int,
                shuffle: bool, augment: bool = False, num_workers: int = 0, seed: int = 0,
                pin_memory: bool = False) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    if prep.kind == "image":
        dataset, collate = ImageFiles(items, labels, image_transform(prep, augment)), None
    else:
        dataset, collate = list(zip(items, labels)), TextBatches(tokenizer, prep.max_length)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator,
                      num_workers=num_workers, pin_memory=pin_memory, persistent_workers=num_workers > 0)

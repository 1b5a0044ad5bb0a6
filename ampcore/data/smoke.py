"""Embedded data for the smoke profile: no network, no data directory.

- Digits: the real 8x8 handwritten digit set that scikit-learn ships (1,797 images).
- Sentiment: a generated, learnable review corpus with a WordPiece tokenizer trained on it.
"""

from __future__ import annotations

import random

import torch

from ampcore.data.imdb import TextSplits
from ampcore.data.mnist import ImageSplits
from ampcore.core.errors import DataSizeError

POSITIVE = ("great", "wonderful", "superb", "moving", "brilliant", "delightful", "charming",
            "gripping", "beautiful", "excellent", "funny", "touching")
NEGATIVE = ("awful", "boring", "dull", "terrible", "clumsy", "tedious", "weak", "bland",
            "painful", "messy", "forgettable", "lifeless")
FILLER = ("the", "film", "movie", "plot", "acting", "story", "cast", "director", "scene",
          "music", "ending", "was", "is", "and", "with", "a", "of", "really", "quite", "this",
          "camera", "script", "dialogue", "pacing", "characters", "in", "at", "it")


def sentiment_corpus(train_samples: int, test_samples: int, seed: int,
                     heldout_samples: int = 0) -> TextSplits:
    """Reviews whose label is the majority sentiment of their opinion words, amid filler;
    ``heldout_samples`` more drawn after them (train and test are those of a corpus without
    them), none repeating a train or test text."""
    rng = random.Random(seed)

    def review(label: int) -> str:
        own, other = (POSITIVE, NEGATIVE) if label == 1 else (NEGATIVE, POSITIVE)
        words = [rng.choice(FILLER) for _ in range(rng.randint(8, 20))]
        opinions = [rng.choice(own) for _ in range(rng.randint(2, 4))]
        opinions += [rng.choice(other) for _ in range(rng.randint(0, 1))]
        for word in opinions:
            words.insert(rng.randrange(len(words) + 1), word)
        return " ".join(words)

    labels = [i % 2 for i in range(train_samples + test_samples)]
    rng.shuffle(labels)
    texts = [review(label) for label in labels]
    sample, heldout_texts = set(texts), []
    heldout_labels = [i % 2 for i in range(heldout_samples)]
    rng.shuffle(heldout_labels)
    for label in heldout_labels:
        text = review(label)
        while text in sample:  # a repeat would be a trained-on review
            text = review(label)
        sample.add(text)
        heldout_texts.append(text)
    source = "generated sentiment corpus (embedded, smoke)"
    return TextSplits(texts[:train_samples], labels[:train_samples], texts[train_samples:],
                      labels[train_samples:], source=source, heldout_texts=heldout_texts,
                      heldout_labels=heldout_labels,
                      heldout_source=f"{heldout_samples} more generated reviews (seed {seed}), "
                      "disjoint from the sample" if heldout_samples else "")


def train_wordpiece_tokenizer(texts: list[str], vocab_size: int = 256):
    """A BERT-style WordPiece tokenizer (``tokenizers``) whose vocabulary is the corpus' most
    frequent words, ties broken alphabetically.

    Built from counted words rather than with the library's trainer, whose ties fall in hash
    order: the same corpus must give the same token ids in every process (DDP ranks, reruns).
    """
    from collections import Counter

    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    counts = Counter(word for text in texts
                     for word, _ in pre_tokenizers.BertPreTokenizer().pre_tokenize_str(
                         normalizer.normalize_str(text)))
    words = sorted(counts, key=lambda w: (-counts[w], w))[: max(0, vocab_size - len(specials))]
    vocab = {token: i for i, token in enumerate(specials + words)}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
    )


def digits(train_samples: int, test_samples: int, seed: int,
           heldout_samples: int = 0) -> ImageSplits:
    """scikit-learn's 8x8 digits, shuffled with ``seed``, normalised like MNIST; the
    ``heldout_samples`` images after the train and test ones are the held-out set."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    total = train_samples + test_samples
    if total + heldout_samples > len(labels):
        held = f" + {heldout_samples} held-out" if heldout_samples else ""
        raise DataSizeError(f"the digit set has {len(labels)} images; asked for "
                            f"{total + heldout_samples} ({train_samples} train + {test_samples} "
                            f"test{held})")
    # A prefix of one permutation: train and test do not depend on the held-out size.
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    order = order[:total + heldout_samples]
    images = ((images[order] - images.mean()) / images.std()).unsqueeze(1)
    labels = labels[order]
    return ImageSplits(images[:train_samples], labels[:train_samples],
                       images[train_samples:total], labels[train_samples:total], num_classes=10,
                       source="scikit-learn 8x8 digits (embedded, smoke)",
                       heldout_images=images[total:] if heldout_samples else None,
                       heldout_labels=labels[total:] if heldout_samples else None)

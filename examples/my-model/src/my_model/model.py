"""The model, its data and ``build``: a convolution finds a 3-token motif in generated token
sequences (label 1: the motif occurs somewhere)."""

import torch

from ampcore.api import PreparedWorkload, linear_schedule, make_adamw

VOCAB, MOTIF = 32, (0, 1, 2)  # random tokens are drawn from the rest of the vocabulary


class MotifNet(torch.nn.Module):
    def __init__(self, width: int = 128):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, 64)
        self.conv = torch.nn.Conv1d(64, width, kernel_size=3, padding=1)
        self.head = torch.nn.Linear(width, 2)

    def forward(self, tokens):
        features = self.conv(self.embed(tokens).transpose(1, 2)).relu()
        return self.head(features.amax(dim=2))  # logits: (samples, 2)


def forward(model, inputs):
    return model(inputs["tokens"])


def sequences(count, length, generator, device):
    """Random tokens; the motif written at a random place into the samples labelled 1."""
    tokens = torch.randint(len(MOTIF), VOCAB, (count, length), generator=generator)
    labels = torch.randint(0, 2, (count,), generator=generator)
    starts = torch.randint(0, length - len(MOTIF) + 1, (count,), generator=generator)
    for i in labels.nonzero().flatten().tolist():
        tokens[i, starts[i]:starts[i] + len(MOTIF)] = torch.tensor(MOTIF)
    return {"tokens": tokens.to(device)}, labels.to(device)


def build(config, device, *, real_data, data_dir, allow_download, allow_random_init):
    generator = torch.Generator().manual_seed(config.seed)  # the data: the same every run
    train_x, train_y = sequences(config.train_samples, config.max_length, generator, device)
    test_x, test_y = sequences(config.test_samples, config.max_length, generator, device)
    held_x, held_y = sequences(config.eval_samples, config.max_length, generator, device)
    torch.manual_seed(config.training_seed)  # the same initial weights for every precision
    model = MotifNet().to(device)
    optimizer = make_adamw(model, config.lr, config.weight_decay, device)
    steps = config.epochs * -(-config.train_samples // config.batch_size)
    return PreparedWorkload(
        name="my-model", model=model, forward=forward, optimizer=optimizer,
        scheduler=linear_schedule(optimizer, steps),
        train_inputs=train_x, train_labels=train_y, test_inputs=test_x, test_labels=test_y,
        heldout_inputs=held_x, heldout_labels=held_y, heldout_source="generated, disjoint draws",
        data_source=f"generated motif sequences of {config.max_length} tokens",
        weights_source="random init", accuracy_meaningful=True,
        tokens_per_sample=config.max_length)

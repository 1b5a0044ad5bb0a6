"""my-model: ampcore's AMP suite on a model of your own (docs/YOUR-MODEL.md in ampcore).

Declared here without torch (an entry point is loaded whenever ampcore's registries are
read); ``my_model.model:build`` is imported only when a run trains."""

from ampcore.api import Workload, WorkloadConfig

WORKLOAD = Workload(
    "my-model", "a convolutional motif finder on generated token sequences",
    "my_model.model:build",
    run_options=("max_length",),  # --amp-max-length changes the sequence length
    ddp=True,  # test_ddp_* run it on --amp-nproc processes
    configs={"smoke": WorkloadConfig(epochs=2, batch_size=64, lr=3e-3, train_samples=1024,
                                     test_samples=256, eval_samples=256, max_length=64,
                                     accuracy_floor=0.9),
             "seed": WorkloadConfig(epochs=3, batch_size=256, lr=2e-3, train_samples=50_000,
                                    test_samples=5_000, eval_samples=5_000, max_length=512,
                                    accuracy_floor=0.95)})

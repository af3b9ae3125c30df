"""Every .pt file is read as untrusted: a pickle that would run code is refused without
running, in one line of our own that names the file and how to rebuild it."""

import pytest
import torch
from synthetic import flip_tensor_byte

from vaelab.core.errors import DataError
from vaelab.core.tensor_files import CHECKSUM_KEY, DamagedFile, contents_digest
from vaelab.data.splits import load_split
from vaelab.evaluation.classifier import load_classifier
from vaelab.models.saved import load_model
from vaelab.training.checkpoint import Checkpoint, CheckpointSetAside


class Payload:
    """Unpickling this creates `marker`: the proof that the file's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def load_prepared_file(path):
    load_split(path.parent, path.stem)


LOADERS = {
    "model": (load_model, "model.pt", "rerun its train stage"),
    "classifier": (load_classifier, "classifier.pt", "rerun its classifier stage"),
    "prepared file": (load_prepared_file, "train.pt", "rerun its prepare stage"),
}


@pytest.mark.parametrize("role", LOADERS)
def test_a_pickle_with_code_is_refused_unrun_in_one_line(tmp_path, role):
    load, name, remedy = LOADERS[role]
    marker = tmp_path / "payload-ran"
    path = tmp_path / name
    torch.save({"state_dict": {}, "images": Payload(marker)}, path)
    with pytest.raises(DataError) as info:
        load(path)
    message = str(info.value)
    assert not marker.exists()
    assert "\n" not in message and message.startswith(f"{role} {path} holds Python objects")
    assert remedy in message and "weights_only" not in message


@pytest.mark.parametrize("role", LOADERS)
def test_a_damaged_or_missing_file_is_one_line(tmp_path, role):
    load, name, remedy = LOADERS[role]
    path = tmp_path / name
    with pytest.raises(DataError, match=f"^{role} {path} not found; {remedy}"):
        load(path)
    path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    with pytest.raises(DataError) as info:
        load(path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{role} {path} is corrupt, truncated or not a vaelab")


def test_a_checkpoint_with_code_is_refused_unrun_and_set_aside(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "model": Payload(marker)}, path)
    with pytest.raises(CheckpointSetAside) as info:
        Checkpoint(path, key="k").load()
    message = str(info.value)
    assert not marker.exists()
    assert "\n" not in message and message.startswith(f"checkpoint {path} holds Python objects")
    assert message.endswith(
        f"moved aside to {tmp_path / 'checkpoint.damaged.pt'}; run again to start afresh"
    )
    assert "weights_only" not in message and not path.exists()


def _saved_model(path):
    from vaelab.models.registry import build_model
    from vaelab.models.saved import save_model

    model = build_model("vae_mlp", 28, latent_dim=2, hidden_dim=8)
    save_model(path, model, {"name": "t", "model": "vae_mlp"}, [], 1.0)


def _saved_classifier(path):
    from vaelab.evaluation.classifier import DigitCNN, save_classifier

    save_classifier(path, DigitCNN(28, 10), {})


WRITERS = {"model": _saved_model, "classifier": _saved_classifier}


@pytest.mark.parametrize("role", WRITERS)
def test_changed_bytes_in_a_model_are_found_before_it_is_used(tmp_path, role):
    load, name, remedy = LOADERS[role]
    path = tmp_path / name
    WRITERS[role](path)
    load(path)  # as written: it loads
    flip_tensor_byte(path)
    assert torch.load(path, weights_only=True)  # torch alone does not see it
    with pytest.raises(DamagedFile) as info:
        load(path)
    assert str(info.value) == (
        f"{role} {path} is damaged: its contents differ from the checksum it was saved with "
        f"(a bad disk, or a copy cut short); {remedy}"
    )


def test_files_written_before_checksums_still_load(tmp_path):
    path = tmp_path / "model.pt"
    _saved_model(path)
    state = torch.load(path, weights_only=True)
    del state[CHECKSUM_KEY]
    torch.save(state, path)
    assert load_model(path).experiment == {"name": "t", "model": "vae_mlp"}


def test_the_checksum_covers_every_tensor_and_value():
    state = {
        "w": torch.zeros(3),
        "history": [{"loss": 1.0}],
        "rng": torch.zeros(4, dtype=torch.uint8),
    }
    base = contents_digest(state)
    assert contents_digest({**state, "w": torch.tensor([0.0, 0.0, 1e-30])}) != base
    assert contents_digest({**state, "w": torch.zeros(3, dtype=torch.float64)}) != base
    assert contents_digest({**state, "w": torch.zeros(1, 3)}) != base
    assert contents_digest({**state, "history": [{"loss": 1.0000001}]}) != base
    assert contents_digest({**state, "rng": torch.ones(4, dtype=torch.uint8)}) != base
    assert contents_digest(dict(state)) == base

"""Every .pt file is read as untrusted: a pickle that would run code is refused without
running, in one line of our own that names the file and how to rebuild it."""

import pytest
import torch

from vaelab.core.errors import DataError
from vaelab.data.splits import load_split
from vaelab.evaluation.classifier import load_classifier
from vaelab.models.saved import load_model
from vaelab.training.checkpoint import Checkpoint


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


def test_a_checkpoint_with_code_is_refused_unrun_and_the_run_starts_afresh(tmp_path, capsys):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "model": Payload(marker)}, path)
    assert Checkpoint(path, key="k").load() is None
    said = capsys.readouterr()
    lines = [line for line in (said.out + said.err).splitlines() if str(path) in line]
    assert not marker.exists()
    assert len(lines) == 1 and "holds Python objects" in lines[0], lines
    assert "starting afresh" in lines[0] and "weights_only" not in lines[0]

"""atomic_file's temporary name keeps every suffix of the target's name."""

from __future__ import annotations

import pytest

from mrigan_tf.atomic import atomic_file


@pytest.mark.parametrize("name, suffix", [("latest.weights.h5", ".weights.h5"),
                                          ("volumes.nii.gz", ".nii.gz"),
                                          ("report.json", ".json"),
                                          ("README", "")])
def test_atomic_file_keeps_every_suffix(tmp_path, name, suffix):
    # Writers such as Keras' save_weights choose the format by the whole suffix.
    target = tmp_path / "sub" / name
    with atomic_file(target) as tmp:
        assert tmp.parent == target.parent and tmp.name != target.name
        assert tmp.name.startswith(f".{name}.partial-")
        assert tmp.name.removeprefix(f".{name}.partial-").endswith(suffix)
        assert len(tmp.name) > len(f".{name}.partial-{suffix}")   # a random part between
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert [p.name for p in target.parent.iterdir()] == [name]


def test_atomic_file_with_a_double_suffix_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "latest.weights.h5"
    target.write_text("previous epoch")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target) as tmp:
            assert tmp.name.endswith(".weights.h5")
            tmp.write_text("half of the next")
            raise KeyboardInterrupt
    assert target.read_text() == "previous epoch"
    assert [p.name for p in tmp_path.iterdir()] == ["latest.weights.h5"]

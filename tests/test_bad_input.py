"""Every kind of bad input: a one-line error naming the value, exit code 2, earlier runs untouched.

The table goes through the command-line entry point (`run_search.cli`, what `python run_search.py`
runs) in this process, to keep ~30 commands within seconds; two cases also run as real processes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import run_search
from search.runner import run
from tests.conftest import TINY, compose, run_cli
from tests.test_data import make_cifar10, make_idx, make_image_folder, write_idx

# (overrides, fragment of the one-line message); {root} is a folder of bad data made per case
CASES = [
    (["base=foo"], "base='foo' is not one of: efficientnet_b0, mobilenetv1, mobilenetv2, resnet18, resnet50"),
    (["data=imagenet"], "data='imagenet' is not one of: cifar10, cifar100, fashion_mnist, image_folder, mnist, synthetic"),
    (["experiment=huge"], "experiment='huge' is not one of: family, fig3, fig4, fig8, rules, smoke, table3"),
    (["storage=mysql"], "storage='mysql' is not one of: journal, postgres, sqlite"),
    (["search.alpha.min=0.5"], "search.alpha.min=0.5 must be >= 1"),
    (["search.beta.min=1.4", "search.beta.max=1.2"], "search.beta.min=1.4 is larger than search.beta.max=1.2"),
    (["search.gamma.step=0"], "search.gamma.step=0.0 must be > 0"),
    (["search.phi_min=5"], "search.phi_min=5 must be <= search.phi_max=4"),
    (["base.spec={{stem_channels: 8, stages: [{{block: ds, channels: 8, repeats: 1, stride: 5}}]}}"],  # str.format
     "base.spec.stages[0].stride=5 must be one of: 1, 2"),
    (["search.alpha.step=-0.5"], "search.alpha.step=-0.5 must be > 0"),
    (["search.tolerance=-0.1"], "search.tolerance=-0.1 must be >= 0"),
    (["search.timeout=0"], "search.timeout=0.0 must be > 0"),
    (["search.confirm_top=-1"], "search.confirm_top=-1 must be >= 0 (search.confirm_top=0 turns confirmation off)"),
    (["search.tolerance=0", "search.beta.max=1", "search.gamma.max=1", "search.alpha.max=1.5", "search.alpha.step=0.5"],
     "no grid point has alpha*beta^2*gamma^2 within search.tolerance=0.0 of search.target=2.0: the closest is 1.5000 at (1.5, 1.0, 1.0)"),
    (["base.resolution=4"], "base.resolution=4 is too small for base.variant=small: use >= 8"),
    (["base.variant=imagenet", "base.resolution=16"], "base.resolution=16 is too small for base.variant=imagenet: use >= 32"),
    (["train.epochs=abc"], "train.epochs=abc: Value 'abc' of type 'str' could not be converted to Integer"),
    (["train.foo=1"], "train.foo=1: no key 'train.foo'; train has: epochs, max_images, batch_size"),
    (["data=cifar10", "data.bogus=1"], "data.bogus=1: no key 'data.bogus'; data has: name, root"),
    (["epochs"], "epochs: Error parsing override 'epochs'"),
    (["train.epochs=0"], "train.epochs=0 must be > 0"),
    (["train.batch_size=-8"], "train.batch_size=-8 must be > 0"),
    (["train.lr=0"], "train.lr=0.0 must be > 0"),
    (["train.lr=-0.1"], "train.lr=-0.1 must be > 0"),
    (["name=../escape"], "name='../escape' must be a plain folder name"),
    (["name=/tmp/escape"], "name='/tmp/escape' must be a plain folder name"),
    (["search.workers=2"], "search.workers=2 needs storage=journal or storage=postgres"),
    (["search.workers=-1"], "search.workers=-1 must be >= 0 (0: as many processes as this machine runs well)"),
    (["storage=journal"], "prev/study.db holds this run's study, written with storage=sqlite: add storage=sqlite to resume it"),
    (["runs_dir={root}", "name=j"], "j/study.journal holds this run's study, written with storage=journal: add storage=journal"),
    (["storage=journal", "storage.grace_period=5", "storage.heartbeat_interval=10"],
     "storage.grace_period=5 must be larger than storage.heartbeat_interval=10"),
    (["storage=postgres", "storage.url=postgresql+psycopg://user:s3cret@127.0.0.1:9/db"],
     "cannot open the study storage postgresql+psycopg://user:***@127.0.0.1:9/db"),
    (["storage=postgres", "storage.url=nosuchdb://x"], "cannot open the study storage nosuchdb://x"),
    (["storage=postgres"], "storage=postgres needs storage.url=... or $OPTUNA_STORAGE_URL"),
    (["data=cifar10", "data.root={root}/missing"], "/missing' is not a folder: expected one with the cifar10"),
    (["data=mnist", "data.root={root}"], "has no train-images-idx3-ubyte[.gz]: expected MNIST"),  # a CIFAR folder
    (["data=mnist", "data.root={root}"], "train-labels-idx1-ubyte: magic number 0x00000803 is not 0x00000801"),
    (["data=mnist", "data.root={root}"], "train-images-idx3-ubyte: truncated: header says [40, 28, 28]"),
    (["data=cifar10", "data.root={root}"], "data_batch_1: cannot unpickle"),
    (["data=image_folder", "data.root={root}"], "/fox has no image files"),
    (["data=image_folder", "data.root={root}"], "/fox/notes.png: Pillow cannot read it"),
    (["train.precision=fp8"], "train.precision='fp8' is not one of: auto, bf16, fp16, fp32"),
    (["train.optimizer=adam"], "train.optimizer='adam' is not one of: sgd, adamw"),
    (["runs_dir={root}", "name=junk"], "junk/study.db is not an SQLite database (file is not a database)"),
    (["runs_dir={root}/afile/runs"], "/afile/runs/prev cannot be created: "),  # runs_dir under a regular file
    (["experiment=family", "series.family.coefficients={root}/best.yaml"], "best.yaml' is not valid YAML ("),
    (["train.batch_size=512"], "train.batch_size=512 is larger than the 270 training images of an epoch"),
    (["train.max_images=16"], "train.batch_size=32 is larger than the 16 training images of an epoch"),
    (["train.epochs=1", "train.lr=0.1"], "name=prev was scored with other settings than this command's (train.lr: 0.003 -> 0.1, "),
]
if not torch.cuda.is_available():  # on a GPU machine it is a valid setting
    CASES.append((["train.device=cuda"], "train.device=cuda but this machine has no CUDA device"))


def bad_data(index: int, root: Path) -> None:
    """The bad data folder of CASES[index] (data cases only), built in `root`."""
    fragment = CASES[index][1]
    if "has no train-images" in fragment:
        make_cifar10(root)
    elif "magic number" in fragment:
        make_idx(root, gz=False)
        write_idx(root / "train-labels-idx1-ubyte", np.zeros(40, np.uint8), 0x803, gz=False)
    elif "truncated" in fragment:
        images = make_idx(root, gz=False) / "train-images-idx3-ubyte"
        images.write_bytes(images.read_bytes()[:-5])
    elif "unpickle" in fragment:
        (make_cifar10(root) / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"not a pickle")
    elif "no image files" in fragment:
        make_image_folder(root)
        (root / "fox").mkdir()
    elif "not an SQLite database" in fragment:
        (root / "junk").mkdir()
        (root / "junk" / "study.db").write_bytes(b"\x00garbage, not a database\xff" * 100)
    elif "written with storage=journal" in fragment:
        (root / "j").mkdir()
        (root / "j" / "study.journal").write_text("")
    elif "cannot be created" in fragment:
        (root / "afile").write_text("a regular file where a folder should be")
    elif "not valid YAML" in fragment:
        (root / "best.yaml").write_text("alpha: [1.2\nbeta: : 1.1\n")
    elif "Pillow" in fragment:
        make_image_folder(root)
        (root / "fox").mkdir()
        (root / "fox" / "notes.png").write_text("a text file named like an image")


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Path:
    """The runs folder of a finished tiny search named `prev`."""
    runs = tmp_path_factory.mktemp("bad") / "runs"
    assert run(compose("name=prev", "train.epochs=1", "search.pruner=none", runs_dir=runs)) == 0
    assert (runs / "prev" / "best.yaml").exists()
    return runs


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("index", range(len(CASES)), ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_one_line_exit_2_nothing_changed(index, earlier, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPTUNA_STORAGE_URL", raising=False)
    overrides, fragment = CASES[index]
    bad_data(index, tmp_path)
    args = [*TINY, f"runs_dir={earlier}", "name=prev", *(o.format(root=tmp_path) for o in overrides)]
    before, made = snapshot(earlier), snapshot(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_search.cli(args)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    assert fragment in err
    assert "s3cret" not in err
    assert snapshot(earlier) == before
    assert snapshot(tmp_path) == made  # the bad data (a garbage study.db included) is left as it was


def test_bad_input_as_real_processes(earlier):
    before = snapshot(earlier)
    for overrides, fragment in (CASES[0], CASES[12], CASES[14]):
        result = run_cli("name=prev", *overrides, runs_dir=earlier)
        assert result.returncode == 2
        assert result.stderr.startswith(f"error: {fragment}") and result.stderr.count("\n") == 1
    assert snapshot(earlier) == before
    assert not Path(os.getcwd(), "outputs").exists()  # Hydra wrote nothing of its own either


def test_nan_loss_fails_the_trial_and_the_search_goes_on(runs):
    cfg = compose("name=nan", "train.lr=1e12", "train.momentum=0", "train.label_smoothing=0",
                  "train.schedule=cosine", "search.pruner=none", runs_dir=runs)
    assert run(cfg) == 0
    import pandas as pd

    trials = pd.read_csv(runs / "nan" / "trials.csv")
    assert len(trials) == 3 and (trials.state == "FAIL").all()  # every candidate was tried
    assert trials.failure.str.contains("training loss became (?:nan|inf)").all()
    assert not (runs / "nan" / "best.yaml").exists()


def test_same_config_and_seed_give_the_same_scores(earlier):
    """Determinism on CPU: a second run of the fixture's config scores every candidate identically."""
    import pandas as pd

    assert run(compose("name=again", "train.epochs=1", "search.pruner=none", runs_dir=earlier)) == 0
    first, second = (pd.read_csv(earlier / n / "trials.csv").set_index("key").sort_index() for n in ("prev", "again"))
    assert first.score.notna().all()
    assert first.score.tolist() == second.score.tolist() and first.accuracies.tolist() == second.accuracies.tolist()


def test_saved_config_and_messages_hide_the_storage_password():
    from search.storage import hide_password, redact

    saved = redact({"storage": {"kind": "postgres", "url": "postgresql+psycopg://u:s3cret@db:5432/x"}})
    assert saved["storage"]["url"] == "postgresql+psycopg://u:***@db:5432/x"
    assert redact({"storage": {"url": None}}) == {"storage": {"url": None}}
    assert "s3cret" not in hide_password("not a url at all s3cret")

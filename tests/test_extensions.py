"""A user's own plugin and method from their own folder (``extensions:`` in a config): it is
imported before the config is checked, composed in ``strategies.define``, applied under the
local, processes and Ray backends with the same numbers, recorded with its digest in
results.json, and a changed extension stops ``--resume``."""

from __future__ import annotations

import json
import textwrap

import pytest

from cfer.core.typed import ConfigError
from cfer.experiments.config.load import load_config
from cfer.experiments.run.continual import ContinualRunner
from tests.test_backends import SLOT, _numbers, ray_cluster  # noqa: F401 (the fixture)
from tests.test_runner import TINY

PLUGIN = '''
from dataclasses import dataclass
from pathlib import Path

from avalanche.core import SupervisedPlugin

from cfer.plugins.registry import PluginParams, register_plugin


@dataclass(frozen=True)
class CountedPullParams(PluginParams):
    strength: float = 0.5
    log: str = ""  # a file each process appends a line to when the penalty is applied


@register_plugin("NAME", params=CountedPullParams, phase="regularize", first_experience="inert")
class CountedPullPlugin(SupervisedPlugin):
    """Pulls the weights toward those after the previous experience: strength * sum((w - w')^2)."""

    def __init__(self, **settings):
        super().__init__()
        self.config = CountedPullParams(**settings)
        self.previous = None

    def after_training_exp(self, strategy, **kwargs):
        self.previous = [p.detach().clone() for p in strategy.model.parameters()]

    def before_backward(self, strategy, **kwargs):
        if self.previous is None:
            return
        pull = sum(((p - q) ** 2).sum() for p, q in zip(strategy.model.parameters(), self.previous)
                   if p.shape == q.shape)
        strategy.loss = strategy.loss + self.config.strength * pull
        if self.config.log:
            with open(self.config.log, "a") as f:
                f.write("applied\\n")
'''


def write_project(folder, *, name: str, strength: float = 0.5):
    """A user's folder outside the repository: the plugin file (registering plugin ``name``) and a
    config naming it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my_plugins.py").write_text(PLUGIN.replace("NAME", name))
    config = folder / "mine.yaml"
    config.write_text(textwrap.dedent(f"""\
        extensions: [my_plugins.py]
        strategies:
          methods: [naive, pulled]
          define:
            pulled:
              base: naive
              plugins: [{name}: {{strength: {strength}, log: {folder / 'applied.log'}}}]
        """))
    return config


def args(tmp, *extra):
    return [*TINY, f"dataset.root={tmp / 'synth'}", "protocol.orders=1", "output.plots=false",
            "output.save_models=none", f"runner.ray.resources={{{SLOT}: 1}}", *extra]


@pytest.mark.usefixtures("ray_cluster")
def test_a_plugin_from_the_users_folder_runs_under_every_backend_with_the_same_numbers(tmp_path):
    project = tmp_path / "project"
    config = write_project(project, name="counted_pull")
    runs = {}
    for backend, extra in (("local", []), ("processes", ["runner.jobs_per_device=2"]), ("ray", [])):
        cfg = load_config(config, args(tmp_path, f"runner.backend={backend}", *extra))
        assert cfg.extensions == [str(project / "my_plugins.py")]  # absolute: workers find it
        (project / "applied.log").unlink(missing_ok=True)
        runs[backend] = ContinualRunner(cfg, tmp_path / backend).run()
        # the penalty was applied (in whichever process trained), and only from experience 1
        assert (project / "applied.log").read_text().count("applied") > 0, backend
    numbers = {b: _numbers(r) for b, r in runs.items()}
    assert numbers["processes"] == numbers["local"] and numbers["ray"] == numbers["local"]
    pulled, naive = (numbers["local"][m][0]["accuracy_matrix"] for m in ("pulled", "naive"))
    assert pulled[0] == naive[0]  # inert on experience 0, as declared
    (ext,) = runs["local"]["extensions"]
    assert ext["path"] == str(project / "my_plugins.py") and len(ext["sha256"]) == 64


def test_a_changed_extension_stops_resume_and_a_missing_one_is_one_line(tmp_path):
    project = tmp_path / "project"
    config = write_project(project, name="counted_pull_resumed")
    cfg = load_config(config, args(tmp_path, "strategies.methods=[pulled]",
                                   "benchmark.compounds=[sadly angry]"))
    out = tmp_path / "run"
    ContinualRunner(cfg, out).run()
    saved = json.loads((out / "results.json").read_text())
    (project / "my_plugins.py").write_text(PLUGIN.replace("NAME", "counted_pull_resumed") + "\n# edited\n")
    from cfer.core import extensions

    extensions._LOADED.pop(str(project / "my_plugins.py"))  # a new session would read the new file
    with pytest.raises(ConfigError, match=r"--resume .*: extension .*my_plugins.py has changed since the "
                                          r"saved runs \(sha256 [0-9a-f]{12}\.\.\. then"):
        ContinualRunner(cfg, out).run(resume=True)
    assert json.loads((out / "results.json").read_text()) == saved
    with pytest.raises(ConfigError, match=r"^extensions: .*nowhere.py: no such file$"):
        load_config(config, ["extensions=[nowhere.py]"])
    with pytest.raises(ConfigError, match=r"^extensions: no_such_module_of_mine: cannot import it"):
        load_config(config, ["extensions=[no_such_module_of_mine]"])

"""The finetuning experiment end to end on a tiny preset: every variant runs, the table is written."""

from __future__ import annotations

from pathlib import Path

from lab import runs
from lab.experiments.finetune import FROM_NTP_VARIANTS, Preset, configs, report
from lab.run import make_trainer

TINY = Preset(size="100K", seeds=(0,), pretrain_steps=8, finetune_steps=4, batch_size=4,
              general_task={"seq_len": 32, "eval_stories": 8},
              target_task={"max_ops": 1, "eval_ops": 2, "eval_size": 8}, eval_every=4)


def test_every_variant_runs_and_the_table_is_written(tmp_path: Path) -> None:
    planned = configs(TINY)
    names = [c.run_name() for c in planned]
    assert len(names) == len(set(names)) == 2 + len(FROM_NTP_VARIANTS) + 2 + 4 + 2
    for config in planned:
        trainer = make_trainer(config, tmp_path, device="cpu", quiet=True)
        assert trainer.run_dir.name == config.run_name()  # names are known before checkpoints exist
        trainer.run()
    statuses = {d.name: runs.read_json(d / "meta.json")["status"] for d in runs.iter_run_dirs(tmp_path)}
    assert set(statuses) == set(names) and set(statuses.values()) == {"complete"}

    markdown = report(tmp_path / "finetune")
    for variant in [*FROM_NTP_VARIANTS, "mtp_keep", "mtp_drop", "ntp@25", "add@50", "scratch_ntp", "scratch_mtp"]:
        assert variant in markdown
    assert (tmp_path / "finetune" / "table.csv").exists()
    curves = (tmp_path / "finetune" / "curves.csv").read_text().splitlines()
    assert curves[0].startswith("variant") and "cka/head1_out" in curves[0] and len(curves) > 10

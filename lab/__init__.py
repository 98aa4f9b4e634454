"""mtp-lab: controlled small-scale experiments on multi-token prediction."""

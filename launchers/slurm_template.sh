#!/bin/bash
# sbatch script template for sf_kickstart's launchers, filled in by Sample Factory's slurm backend
# (sample_factory/launcher/run_slurm.py, a string.Template: the command, this file's name, partition, GPUs, CPUs and
# timeout are substituted below; a literal dollar sign is written twice). sbatch gets --gres, -c and --output on its
# command line and exports the submitting shell's environment (PATH of the active virtualenv included) to the job.
#
#   python -m sample_factory.launcher.run --run=launchers.minigrid_ablation --backend=slurm \
#       --slurm_workdir=slurm_ablation --slurm_sbatch_template=launchers/slurm_template.sh
#
# Submit from the repository root: the job starts there (SLURM_SUBMIT_DIR), where the relative --train_dir and
# --teacher paths of the generated commands point. Set SF_KICKSTART_VENV to a virtualenv to activate it in the job.
#SBATCH --job-name=sf_kickstart
#SBATCH --time=$TIMEOUT
set -e
cd "$${SLURM_SUBMIT_DIR:-.}"
if [ -n "$${SF_KICKSTART_VENV:-}" ]; then source "$${SF_KICKSTART_VENV}/bin/activate"; fi
echo "sbatch script $FILENAME on $$(hostname): $GPU GPU(s), $CPU CPU(s)"
$CMD

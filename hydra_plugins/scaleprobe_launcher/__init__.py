"""The launchers of conf/hydra/launcher/slurm.yaml and local.yaml, where Hydra looks for them.

Hydra instantiates only plugins defined in the ``hydra_plugins`` namespace
package (this folder is on sys.path through the editable install, or
PYTHONPATH); what they do lives in :mod:`src.cluster`.
"""

from src.cluster import AccountedLauncher

__all__ = ["LocalLauncher", "SlurmLauncher"]


class SlurmLauncher(AccountedLauncher):
    """``hydra/launcher=slurm``: the sweep as one SLURM array job."""

    _EXECUTOR = "slurm"


class LocalLauncher(AccountedLauncher):
    """``hydra/launcher=local``: the same sweep with submitit's local executor."""

    _EXECUTOR = "local"

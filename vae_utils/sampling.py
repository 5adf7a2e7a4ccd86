"""Codes and new images: posterior means, active channels, and a density fitted to the codes after training.

References: Ghosh et al. (2020), ex-post density estimation; Rosca, Lakshminarayanan & Mohamed (2018), the "holes"
between the codes and the prior, which a mixture fitted to the codes avoids (`SkipVAE.sample` keeps N(0, I)).
"""
from typing import Optional

import torch
from sklearn.mixture import GaussianMixture

ACTIVE_VARIANCE = 0.01  # Burda et al. (2016): a channel is active when Var_x(E_q[z]) exceeds this


def active_channels(means: torch.Tensor, threshold: float = ACTIVE_VARIANCE) -> torch.Tensor:
    """(D,) bool: which channels of posterior means (N, D) vary over the data by more than `threshold` (Burda et
    al.). Rate is no test: the same mu != 0 for every image pays rate and tells the decoder nothing."""
    return means.double().var(0) > threshold


class LatentGMM:
    """A Gaussian mixture over the active latent channels; inactive channels are held at their mean code."""

    def __init__(self, n_components: int = 10, seed: int = 0, reg_covar: float = 1e-4):
        self.n_components, self.seed, self.reg_covar = n_components, seed, reg_covar

    def fit(self, means: torch.Tensor) -> "LatentGMM":
        """means: (N, 256, h, w) posterior means of training images."""
        self.latent_shape = tuple(means.shape[1:])  # (256, h, w)
        flat = means.flatten(1).double()  # (N, D)
        self.active = active_channels(flat)  # (D,) bool: Var_x(E_q[z]) > 0.01
        if not self.active.any():
            raise ValueError("no latent channel varies over these codes (Var > 0.01): the encoder ignores its input; "
                             "train the model before fitting a mixture to its codes")
        self.fill = flat.mean(0)  # (D,) what the inactive channels are set to
        # scikit-learn's ValueError names a bad n_components, or fewer codes than components
        gm = GaussianMixture(self.n_components, covariance_type="full", reg_covar=self.reg_covar,
                             random_state=self.seed).fit(flat[:, self.active].numpy())
        self.weights = torch.from_numpy(gm.weights_)  # (K,)
        self.locs = torch.from_numpy(gm.means_)  # (K, A)
        self.chol = torch.linalg.cholesky(torch.from_numpy(gm.covariances_))  # (K, A, A)
        return self

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """n codes (n, 256, h, w), float32, drawn with `generator`: a component, then its Gaussian."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, self.locs.shape[1], 1, generator=generator, dtype=torch.float64)  # (n, A, 1)
        z = self.fill.repeat(n, 1)  # (n, D)
        z[:, self.active] = self.locs[k] + (self.chol[k] @ eps).squeeze(-1)  # (n, A)
        return z.float().view(n, *self.latent_shape)


@torch.no_grad()
def batched(model, fn, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """fn (a method of `model`, put in eval mode) over x in batches on the model's device; float32 on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([fn(b.to(device)).float().cpu() for b in x.split(batch)])


def encode_means(model, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Posterior means (N, 256, h, w) of images (N, C, H, W), on the CPU."""
    return batched(model, lambda x: model.encode(x)[0], images, batch)


def gmm_samples(model, gmm: LatentGMM, n: int, seed: int = 0) -> torch.Tensor:
    """n images (n, C, H, W) in [0, 1], decoded from codes drawn from the fitted mixture."""
    z = gmm.sample(n, torch.Generator().manual_seed(seed))  # drawn on the CPU, the same on every device
    return batched(model, model.decode, z)

"""The scene-flow MLP of Zhang et al. 2021, exactly as the reference, plus multi-step chaining.

Reference (``networks/sceneflow_field.py``, ``models/scene_flow_motion_field.py``):

- positional encoding ``PE(v) = [v, cos(f_k v), sin(f_k v)]`` with ``f = linspace(1, 17, 16)``
  (linear, no pi) for the world point xyz (3 + 96 = 99 channels) and for time t = frame / N
  (1 + 32 = 33 channels); input ``[PE(t), PE(xyz)]``, 132 channels;
- 132 -> 256, 4 x (256 -> 256), LeakyReLU(0.2) after each, then 256 -> 3 linear;
- output divided by ``sf_mag_div = 100``: a 3-D displacement for ONE frame step (t -> t + 1/N);
- Kaiming-normal init (a = 0.2, fan_in) on every layer, zero biases;
- a pair g frames apart chains the MLP g times: ``p_{k+1} = p_k + SF(p_k, t + k/N)``,
  ``S = p_g - X`` (gradients through the whole chain).

One addition: world points are normalised into the MLP's input box, ``(X - centre) / extent``,
and the output is scaled back by ``extent``, so the encoding's frequencies mean the same thing
whatever the units of the poses (the reference relies on MiDaS-calibrated units).
"""

from __future__ import annotations

import torch
from torch import nn


def periodic_embed(v: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """``[v, cos(f_k v)..., sin(f_k v)...]``: ``(..., C)`` -> ``(..., C * (1 + 2 K))`` for K freqs."""
    fv = (v[..., :, None] * freqs).flatten(-2)  # (..., C*K), channel-major
    return torch.cat([v, torch.cos(fv), torch.sin(fv)], dim=-1)


class SceneFlowMLP(nn.Module):
    """Per-point MLP ``(xyz (..., 3), t (..., 1)) -> one-step displacement (..., 3)`` in MLP units."""

    def __init__(self, *, width: int = 256, n_layers: int = 4, n_freq: int = 16,
                 sf_mag_div: float = 100.0) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.linspace(1.0, 1.0 + n_freq, n_freq))
        self.sf_mag_div = float(sf_mag_div)
        in_ch = (1 + 2 * n_freq) * 1 + (1 + 2 * n_freq) * 3  # 33 + 99 = 132
        layers: list[nn.Module] = [nn.Linear(in_ch, width), nn.LeakyReLU(0.2)]
        for _ in range(n_layers):
            layers += [nn.Linear(width, width), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(width, 3))
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, a=0.2, mode="fan_in", nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)

    def encode(self, xyz: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Input features ``(..., 132)`` = ``[PE(t), PE(xyz)]``; ``t`` is ``(..., 1)``."""
        return torch.cat([periodic_embed(t, self.freqs), periodic_embed(xyz, self.freqs)], dim=-1)

    def forward(self, xyz: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One-step displacement ``(..., 3)`` of points ``xyz (..., 3)`` at times ``t (..., 1)``."""
        return self.net(self.encode(xyz, t)) / self.sf_mag_div

    def forward_conv_reference(self, xyz_img: torch.Tensor, t_img: torch.Tensor) -> torch.Tensor:
        """Slow twin in the reference's form: 1x1 convolutions on ``(B, 3, H, W)`` and ``(B, 1, H, W)``.

        Returns ``(B, 3, H, W)``; equal to :meth:`forward` on the same points.
        """
        import torch.nn.functional as F

        def embed(v):  # (B, C, H, W) -> (B, C(1+2K), H, W), same channel order as periodic_embed
            out = [v]
            fv = torch.cat([v[:, c:c + 1] * f for c in range(v.shape[1]) for f in self.freqs], dim=1)
            out += [torch.cos(fv), torch.sin(fv)]
            return torch.cat(out, dim=1)

        h = torch.cat([embed(t_img), embed(xyz_img)], dim=1)
        for m in self.net:
            if isinstance(m, nn.Linear):
                h = F.conv2d(h, m.weight[:, :, None, None], m.bias)
            else:
                h = m(h)
        return h / self.sf_mag_div


class SceneFlowField(nn.Module):
    """The MLP in world units: ``SF(X, t)`` world displacement per frame step, with chaining.

    ``centre (3,)`` and ``extent`` map world points into the MLP's box; ``num_frames`` N sets the
    time step 1/N (t = frame / N, as the reference).
    """

    def __init__(self, mlp: SceneFlowMLP, *, centre: torch.Tensor, extent: float, num_frames: int) -> None:
        super().__init__()
        self.mlp = mlp
        self.register_buffer("centre", torch.as_tensor(centre, dtype=torch.float32).reshape(3))
        self.register_buffer("extent", torch.tensor(float(extent), dtype=torch.float32))
        self.num_frames = int(num_frames)

    def time_of(self, frame: torch.Tensor | float) -> torch.Tensor:
        """t = frame / N (the reference's time code)."""
        return torch.as_tensor(frame, dtype=torch.float32, device=self.centre.device) / self.num_frames

    def forward(self, X: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """World displacement ``(..., 3)`` over one frame step of world points ``X (..., 3)`` at ``t (..., 1)``."""
        return self.mlp((X - self.centre) / self.extent, t) * self.extent

    def chain(self, X: torch.Tensor, t: torch.Tensor, steps: torch.Tensor | int, *,
              return_first: bool = False):
        """Total displacement ``S (..., 3)`` over ``steps`` frame steps: p_{k+1} = p_k + SF(p_k, t + k/N).

        ``X (..., 3)``, ``t (..., 1)``; ``steps`` an int >= 1 or a per-point integer tensor ``(...)``
        of counts >= 1 (a batch mixing gaps; each point stops after its own count; only points still
        moving are evaluated). With ``return_first`` also returns the first step ``SF(X, t) (..., 3)``.
        """
        dt = 1.0 / self.num_frames
        first = self.forward(X, t)
        if isinstance(steps, int):
            p = X + first
            for k in range(1, steps):
                p = p + self.forward(p, t + k * dt)
            S = p - X
            return (S, first) if return_first else S
        # Sort points by step count (descending) so that step k moves a prefix of them.
        lead = X.shape[:-1]
        sf = steps.to(X.device).reshape(-1)
        order = torch.argsort(sf, descending=True, stable=True)
        Xs, ts, ss = X.reshape(-1, 3)[order], t.reshape(-1, 1)[order], sf[order]
        p = Xs + first.reshape(-1, 3)[order]
        for k in range(1, int(ss.max().item()) if ss.numel() else 0):
            n_k = int((ss > k).sum().item())
            head = p[:n_k]
            p = torch.cat([head + self.forward(head, ts[:n_k] + k * dt), p[n_k:]], dim=0)
        S = torch.empty_like(Xs).index_copy(0, order, p - Xs).reshape(*lead, 3)
        return (S, first) if return_first else S

    def chain_reference(self, X: torch.Tensor, t: torch.Tensor, steps: int) -> torch.Tensor:
        """Slow twin of :meth:`chain` for one int step count: explicit sum of the per-step flows."""
        total = torch.zeros_like(X)
        p = X.clone()
        for k in range(steps):
            sf = self.forward(p, t + k / self.num_frames)
            total = total + sf
            p = X + total
        return total

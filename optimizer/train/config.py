"""TrainConfig: every knob of consistent-depth + scene-flow test-time training.

The iteration budget is a fixed number of optimizer steps per preset (``warmup_steps`` +
``joint_steps``), independent of clip length. The reference (google/dynamic-video-depth) runs
``min(2000, #pairs)`` iterations per epoch, so a short clip silently gets fewer iterations; here a
60-frame clip and a 10-frame clip get the same number of steps, each step holding
``pairs_per_step`` pairs.

The budgets of the presets (draft, standard, best) are in :data:`vid3d.optimizer.config.PRESETS`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from vid3d.formats.errors import InputError

DEPTH_MODELS = ("auto", "residual", "finetune")
FINETUNABLE_BACKENDS = ("pydnet",)
HYBRID = "+hybrid"  # suffix of TrainInputs.prior_backend for a learned prior combined with the plane sweep
"""Prior backends whose network vid3d can fine-tune in training (torch module with its weights)."""


@dataclass(frozen=True)
class PriorTerms:
    """How strongly training holds on to the depth prior; :meth:`TrainConfig.prior_terms` picks one
    set by the prior's backend (the training stage decides, from the prior it is given)."""

    residual_weight: float
    """L1 weight on the depth net's log-depth residual, scaled by the prior confidence when given:
    keeps the prior's shape (and its distant detail) where the views do not say otherwise. At
    training resolution a multi-view plane-sweep prior (a few % depth error) is below what the
    flows can resolve, so a weak pull lets the net wander: measured (demo inputs, draft, no
    movers sampled) 0.01 -> static AbsRel 0.036, 1 -> 0.035, 10 -> 0.029 (prior 0.027).
    Learned monocular priors use 0.01 (``TrainConfig.learned_prior``)."""
    dynamic_depth_grad: float
    """Factor on the gradient that flow/disparity losses send to the depth of pixels on the dynamic
    mask. There depth and scene flow trade off freely (a camera at near-constant velocity cannot
    tell a near, fast object from a far, slow one), and with a smooth depth net the movers' pull
    bends the static depth around them. Measured on the demo clip's own inputs (draft preset,
    geometric prior, static AbsRel 0.027): 1.0 (reference behaviour) gave 0.068 after training,
    0.0 gave 0.062, 0.0 with ``dynamic_sample_fraction`` 0.1 and ``residual_weight`` 10 gave 0.0295.
    Learned monocular priors (which carry an object's depth) use 1.0: ``TrainConfig.learned_prior``."""
    hold_offset: bool = False
    """The residual term also holds the per-frame log-scale and coarse offset grid (``s_i + g_i``):
    the whole log-depth change ``log z - log z_prior`` is pulled to 0, not only the UNet's residual.
    A plane-sweep prior already has the poses' scale in every frame, and flow barely constrains a
    per-frame scale, so left free it wandered: HoloLens (36 frames, SfM poses, hybrid prior) refined
    per-frame scale over the prior 0.90-1.07 (static AbsRel 0.104 -> 0.117). A learned monocular
    prior's per-frame scale is a guess, so it stays free there."""
    confidence_floor: float = 0.25
    """Least confidence the residual weight uses: weight = ``residual_weight`` x max(prior confidence,
    floor). 1 = the confidence is ignored (every pixel held alike). Where a plane sweep is not
    confident its depth was filled in from the confident pixels around it (edge-aware), and the
    flow there (textureless areas, occlusion edges) is the least reliable too, so the geometric prior
    holds every pixel alike: measured on the walkers clip (whole pipeline, standard preset; refined
    static / moving AbsRel / temporal) floor 0.25 -> 0.043 / 0.073 / 0.0057, 1.0 -> 0.037 / 0.077 /
    0.0063 (prior 0.034 / 0.091 / 0.0225). A hybrid prior's unconfident pixels are a learned
    network's, which training is there to correct, so it keeps 0.25."""
    movers_on_contact: bool = False
    """After training, movers are placed again on their ground contact in the refined static depth
    (:func:`vid3d.optimizer.prior.movers.place_on_contact`): for the plane-sweep prior, which placed
    them there and whose movers' depth gets no gradient (``dynamic_depth_grad`` 0)."""

    def __post_init__(self) -> None:
        if (self.residual_weight < 0 or not 0.0 <= self.dynamic_depth_grad <= 1.0
                or not 0.0 <= self.confidence_floor <= 1.0):
            raise InputError(f"PriorTerms needs residual_weight >= 0, dynamic_depth_grad and confidence_floor in "
                             f"[0, 1], got {self.residual_weight}, {self.dynamic_depth_grad}, {self.confidence_floor}")


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of :func:`vid3d.optimizer.train.run` (frozen; presets in :mod:`vid3d.optimizer.config`)."""

    # --- schedule (reference: Adam betas (0.5, 0.9); warm-up MLP-only with depth frozen, then joint)
    warmup_steps: int = 300
    """Steps that train the scene-flow MLP alone, depth frozen, L2 flow loss, no velocity term."""
    joint_steps: int = 1200
    """Steps that train depth and MLP together, L1 flow loss, constant-velocity term on."""
    pairs_per_step: int = 4
    """Frame pairs (i, j) in one optimizer step (the reference uses 1)."""
    gaps: tuple[int, ...] = (1, 2, 4, 6, 8)
    """Frame gaps j - i of the training pairs (reference: 1, 2, 4, 6, 8). Missing flows are skipped."""
    mlp_lr: float = 1e-3
    """Adam learning rate of the scene-flow MLP (reference: 1e-3)."""
    depth_lr: float = 3e-4
    """Adam learning rate of the offline residual depth net. The reference uses 1e-6 for a
    pretrained MiDaS; our net starts from zero output (depth = prior), so it needs a larger rate."""
    scale_lr: float = 3e-3
    """Adam learning rate of the per-frame log-scale and coarse log-offset grid of the depth."""
    betas: tuple[float, float] = (0.5, 0.9)
    """Adam betas (reference: (0.5, 0.9))."""
    warmup_trains_scale: bool = True
    """Train the per-frame depth scales (T scalars) during warm-up too, so the MLP does not learn
    motion that only compensates a wrong per-frame scale of the prior (the reference freezes all
    depth in warm-up; it has no per-frame scale)."""
    # --- resolution and sampling (the CPU budget)
    train_long_side: int = 128
    """Long side in pixels of the images the depth net sees during training (rounded to a multiple
    of 8). Final depth is predicted at full resolution: prior * exp(scale + upsampled residual)."""
    pixels_per_pair: int = 768
    """Pixels of frame i sampled per pair for the scene-flow MLP (the MLP, chained up to 8 times,
    dominates CPU cost)."""
    dynamic_dilate_px: int = 2
    """Depth within this many training-resolution pixels of the dynamic mask is treated like the
    movers' (``dynamic_depth_grad``): flow on a mover's outline mixes its motion with the
    background's and bends the static depth beside it (measured on the demo inputs, standard preset:
    static AbsRel after training 0.033 without, 0.026 with 2 px, prior 0.027; in that run the band
    was also left out of the static scene-flow term, which now keeps the plain mask)."""
    dynamic_sample_fraction: float = 0.1
    """Share of sampled pixels drawn from the dynamic mask when one is given (objects are small).
    Measured (demo inputs, draft): 0.3 pulled static AbsRel to 0.035, 0.1 to 0.0295, 0 to 0.029;
    0.1 keeps the scene-flow MLP fitted on the movers."""

    # --- losses (reference weights: flow 1, disparity 1 (x100 inside), acceleration 1)
    flow_weight: float = 1.0
    """Projected-flow loss weight (pixels at training resolution, L2 in warm-up, L1 after)."""
    disp_weight: float = 100.0
    """Disparity-consistency weight on |d_ref/z_ij - d_ref/z~_j| with d_ref the median prior depth
    (unit-free; reference: 100 * |1/z - 1/z~| in its own depth units)."""
    disp_kind: str = "ratio"
    """``"ratio"``: max(z, z~)/min(z, z~) - 1 (reference's --use_disp_ratio; scale-free);
    ``"inverse"``: d_ref |1/z - 1/z~| (reference default; measured to pull the clip's scale up by
    several percent, since it shrinks as all depths grow)."""
    velocity_weight: float = 1.0
    """Constant-velocity (zero acceleration) weight; the 3-D difference is expressed in pixels at
    the median depth (fx / d_ref) so the weight is unit-free. Reference acc_mul = 1."""
    static_weight: float = 1.0
    """L1 weight on scene flow outside the dynamic mask (pixels at median depth); 0 = reference
    behaviour (no static term). Used only when a dynamic mask is given."""
    # --- how strongly training holds on to the prior: chosen by the kind of prior (see PriorTerms)
    geometric_prior: PriorTerms = PriorTerms(residual_weight=10.0, dynamic_depth_grad=0.0, hold_offset=True,
                                             confidence_floor=1.0, movers_on_contact=True)
    """Terms for the weight-free ``geometric`` (plane-sweep) prior: it is accurate where confident and
    knows nothing of movers, so its residual and per-frame scale are held (weight 10, on every pixel
    alike) and movers' depth is frozen."""
    hybrid_prior: PriorTerms = PriorTerms(residual_weight=10.0, dynamic_depth_grad=0.0, hold_offset=True,
                                          confidence_floor=0.25)
    """Terms for a learned prior combined with the plane sweep (``NAME+hybrid``): held like the
    geometric prior, but weighted by the sweep's confidence (floor 0.25), so the learned network's
    pixels are freer to change."""
    learned_prior: PriorTerms = PriorTerms(residual_weight=0.01, dynamic_depth_grad=1.0)
    """Terms for a learned monocular prior (``midas``, ``depth_anything``): it knows moving objects'
    depth but not the clip's per-frame scale, so its residual is free and movers' depth trains
    (reference behaviour)."""

    scale_anchor_weight: float = 10.0
    """Weight on the square of the clip's mean log-depth offset (mean over frames of s_i + g_i):
    the prior comes scale-aligned to the poses, so only per-frame deviations are learned. Without
    it, depth and free scene flow let the whole clip's scale drift (measured: -40 % on HoloLens
    with no motion mask). 0 = off."""

    # --- depth net
    depth_channels: tuple[int, ...] = (16, 32, 64, 128)
    """Encoder widths of the compact residual UNet (3 down-samplings)."""
    offset_grid: tuple[int, int] = (3, 4)
    """Per-frame coarse log-depth offset grid (rows, cols), bilinear over the image: the smooth,
    frame-specific distortion of a monocular prior. (1, 1) = a per-frame scale only."""
    max_log_residual: float = 1.0
    """Bound of the per-pixel log-depth residual (tanh): depth stays within prior * e^(+-1) * scale."""
    residual_upsample_sigma: float = 0.0
    """Range scale (log-depth) of the joint bilateral upsampling of the residual net's training-resolution
    output to full resolution, guided by the log prior (:mod:`vid3d.optimizer.train.upsample`): each
    pixel takes the correction of the training pixels on its own surface, so a depth edge the prior has
    sharp gets no halo. 0 = bilinear. Measured on the walkers clip (whole pipeline, standard preset,
    plane-sweep prior): refined static AbsRel 0.0426 bilinear, 0.0432 at 0.05: the halos the refined
    depth shows around occlusion edges come from training itself, not from the upsampling, so it
    stays off. (Holding the prior's depth edges like the movers' band, as a variant: 0.0405.)"""

    # --- which depth model trains (see vid3d.optimizer.train.finetune)
    depth_model: str = "auto"
    """``"residual"``: :class:`~vid3d.optimizer.train.depth_net.ResidualDepthModel` (prior * per-frame
    scale, coarse grid and a bounded UNet residual); ``"finetune"``:
    :class:`~vid3d.optimizer.train.finetune.FinetunedDepthModel` (the prior network itself, every
    weight fine-tuned, as the reference does with MiDaS; needs ``TrainInputs.prior_weights``);
    ``"auto"``: finetune when the prior was made by a network vid3d can fine-tune (``pydnet``) and
    its weights are given, else residual (:meth:`depth_model_for`). Measured on HoloLens (16 frames
    540x360, GT poses, DIS flow, PyDNet prior aligned at 300 GT-depth points per frame; standard
    preset; static AbsRel / delta1 after one median scale / temporal disagreement): prior 0.192 /
    0.714 / 0.090; standard budget (300 + 1200 steps): residual 0.222 / 0.541 / 0.012, finetune
    (64x128) 0.138 / 0.787 / 0.016; 60 + 240 steps: residual 0.229 / 0.482 / 0.016, finetune 0.156 /
    0.753 / 0.024, the reference's unanchored form 0.329 / 0.350 / 0.003: under a learned prior's
    weak pull (``learned_prior``) the residual net gains consistency and loses accuracy, the
    fine-tuned network gains both. A *hybrid* prior (``--prior pydnet``'s default: the plane sweep
    where confident) trains the residual model, held like the geometric prior (``hybrid_prior``): in the whole
    pipeline on HoloLens (36 frames, SfM poses, hybrid prior static AbsRel 0.104) the fine-tuned
    network ran off (the last third of the clip 20-57x too deep, AbsRel 9-17, with a per-frame anchor
    too)."""
    finetune_lr: float = 1e-4
    """Adam learning rate of the fine-tuned prior network's weights (reference: 1e-6 for MiDaS, a
    net 40x larger). Measured (HoloLens 16 frames, 300 steps, 64x128, static AbsRel / delta1 /
    temporal; prior 0.192 / 0.714 / 0.090): 1e-5 -> 0.179 / 0.699 / 0.040, 3e-5 -> 0.190 / 0.667 /
    0.031, 1e-4 -> 0.156 / 0.753 / 0.024, 3e-4 -> 0.158 / 0.749 / 0.022."""
    finetune_affine_lr: float = 1e-3
    """Adam learning rate of the fine-tuned model's per-frame disparity scale (log) and shift."""
    finetune_long_side: int = 128
    """Long side of the training resolution with the fine-tuned network, rounded (each side) to the
    network's multiple (64 for PyDNet v2): 16:9 and 3:2 clips train at 64x128, with 192 at 128x192.
    Measured: 192 is more accurate (HoloLens, 300 steps: AbsRel 0.130, delta1 0.822, temporal 0.030
    against 0.156 / 0.753 / 0.024) but a 60-frame 320x180 clip at the standard preset is estimated
    at about 21 min end to end on the 2-core CPU (joint step 0.76 s, fuse 150 s; front-end stages
    100-115 s) against 13.3-13.6 min at 128 (joint step 0.47 s, warm-up 0.22 s, fuse 67 s); the
    ``best`` preset uses 192."""
    finetune_anchored: bool = True
    """Fine-tuned depth = prior * (network depth / initial network depth), so step 0 is the prior
    exactly at any training resolution; False = the network's depth itself (the reference's form;
    PyDNet at a CPU training resolution is far from the 384x640 prior: see
    :mod:`vid3d.optimizer.train.finetune`)."""
    finetune_full_res: str = "upsample"
    """Full-resolution depth of the fine-tuned model: ``upsample`` (training-resolution inverse
    depth, bilinear), ``ratio`` (full-resolution prior x upsampled z / z_prior) or ``network`` (the
    net again at about the frame's size, affine refitted per frame). Measured on HoloLens (540x360
    from 64x128, lr 1e-4; AbsRel / delta1 / temporal): upsample 0.156 / 0.753 / 0.024, ratio 0.162 /
    0.741 / 0.028, network 0.232 / 0.574 / 0.085 (PyDNet at another input size is another predictor,
    and it is not what was trained); the same order in every run."""

    # --- scene-flow MLP (reference architecture; do not change without a measurement)
    mlp_width: int = 256
    mlp_layers: int = 4
    n_freq: int = 16
    sf_mag_div: float = 100.0

    # --- output
    confidence_gaps: tuple[int, ...] = (1, 2, 4)
    """Gaps (both directions) whose flow/depth agreement makes the output confidence."""
    confidence_px: float = 1.0
    """Reprojection error (pixels at training resolution) at which agreement falls to exp(-1)."""
    confidence_rel: float = 0.05
    """Relative 3-D error at which agreement falls to exp(-1)."""

    # --- multi-view fusion of the final depth (static pixels; see vid3d.optimizer.train.multiview)
    fusion_gaps: tuple[int, ...] = (1, 2, 4, 6, 8)
    """Neighbours (both directions) whose depth, re-projected with the poses, is averaged into each
    frame's static pixels after training; () = no fusion."""
    fusion_passes: int = 3
    """Times the fusion runs, each on the previous pass's output: every pass lets agreeing views
    reach one another further along the clip. Measured on the whole-pipeline outputs (hybrid PyDNet
    prior, static pixels, temporal disagreement / HoloLens static AbsRel, delta1): 1 pass 0.0213 /
    0.1169, 0.875; 2 passes 0.0144 / 0.1160, 0.879; 3 passes 0.0111 / 0.1157, 0.880; rollercoaster
    temporal 0.0032 -> 0.0015 -> 0.0008."""
    movers_in_front: bool = True
    """After training, every pixel on the dynamic mask is at most 0.97 x the depth of its nearest
    static pixel (:func:`vid3d.optimizer.prior.movers.place_in_front`): a mover is never
    behind what it hides. Flow cannot pin a mover's depth (near and fast or far and slow), and a
    fine-tuned network's soft edges drift a mover's rim back to the wall (bear pan, before: mover
    nearer than the background beside it on 61 % of the boundary after training). Under the
    plane-sweep prior each region is first placed again on its ground contact
    (``PriorTerms.movers_on_contact``)."""
    fusion_rel_tol: float = 0.1
    """A neighbour's depth counts only when it agrees within this relative difference (same surface,
    not an occluder)."""

    # --- runtime
    seed: int = 0
    """Seed for pair order, pixel sampling and initial weights."""
    checkpoint_every: int = 100
    """Steps between checkpoints (when a checkpoint folder is given)."""
    mixed_precision: bool = False
    """bf16 autocast of the depth net on CUDA only (CPU bf16 measured slower here); MLP stays fp32."""
    num_threads: int = 0
    """torch CPU threads during training (0 = leave torch's default; restored afterwards). On a
    shared, oversubscribed CPU 1 thread avoids OpenMP spin-wait stalls (measured 10x+ slowdowns
    with 2 threads at load 5 on 2 cores)."""

    def __post_init__(self) -> None:
        if self.warmup_steps < 0 or self.joint_steps < 0 or self.warmup_steps + self.joint_steps < 1:
            raise InputError(f"TrainConfig needs warmup_steps, joint_steps >= 0 with a sum >= 1, "
                             f"got {self.warmup_steps}, {self.joint_steps}")
        if self.pairs_per_step < 1 or self.pixels_per_pair < 16:
            raise InputError(f"TrainConfig needs pairs_per_step >= 1 and pixels_per_pair >= 16, got "
                             f"{self.pairs_per_step}, {self.pixels_per_pair}")
        if not self.gaps or min(self.gaps) < 1:
            raise InputError(f"TrainConfig.gaps must be positive frame gaps, got {self.gaps}")
        if self.train_long_side < 16:
            raise InputError(f"TrainConfig.train_long_side must be >= 16, got {self.train_long_side}")
        if self.disp_kind not in ("ratio", "inverse"):
            raise InputError(f"TrainConfig.disp_kind must be 'ratio' or 'inverse', got {self.disp_kind!r}")
        if self.fusion_passes < 1:
            raise InputError(f"TrainConfig.fusion_passes must be >= 1, got {self.fusion_passes}")
        if self.fusion_gaps and min(self.fusion_gaps) < 1 or not self.fusion_rel_tol > 0:
            raise InputError(f"TrainConfig.fusion_gaps must be positive and fusion_rel_tol > 0, got "
                             f"{self.fusion_gaps}, {self.fusion_rel_tol}")
        if self.dynamic_dilate_px < 0:
            raise InputError(f"TrainConfig.dynamic_dilate_px must be >= 0, got {self.dynamic_dilate_px}")
        if not 0.0 <= self.dynamic_sample_fraction <= 1.0:
            raise InputError(f"TrainConfig.dynamic_sample_fraction must be in [0, 1], "
                             f"got {self.dynamic_sample_fraction}")

        if self.depth_model not in DEPTH_MODELS:
            raise InputError(f"TrainConfig.depth_model must be one of {DEPTH_MODELS}, got {self.depth_model!r}")
        if self.finetune_full_res not in ("upsample", "ratio", "network"):
            raise InputError(f"TrainConfig.finetune_full_res must be 'upsample', 'ratio' or 'network', "
                             f"got {self.finetune_full_res!r}")
        if not self.residual_upsample_sigma >= 0:
            raise InputError(f"TrainConfig.residual_upsample_sigma must be >= 0 (0 = bilinear), got "
                             f"{self.residual_upsample_sigma}")
        if self.finetune_long_side < 16 or not (self.finetune_lr >= 0 and self.finetune_affine_lr >= 0):
            raise InputError(f"TrainConfig needs finetune_long_side >= 16 and learning rates >= 0, got "
                             f"{self.finetune_long_side}, {self.finetune_lr}, {self.finetune_affine_lr}")

    @property
    def total_steps(self) -> int:
        return self.warmup_steps + self.joint_steps

    def prior_terms(self, backend: str) -> PriorTerms:
        """The prior terms for a prior made by ``backend``: ``geometric``, a learned network's name, or
        ``NAME+hybrid`` (a learned network combined with the plane sweep, geometric where the sweep is
        confident, movers placed in front of what they hide: :attr:`hybrid_prior`)."""
        if backend == "geometric":
            return self.geometric_prior
        return self.hybrid_prior if backend.endswith(HYBRID) else self.learned_prior

    def depth_model_for(self, backend: str, weights: str | None) -> str:
        """``"residual"`` or ``"finetune"`` for a prior made by ``backend`` whose network weights are
        ``weights`` (a path, or None). InputError when ``finetune`` is asked for without weights."""
        if self.depth_model == "auto":  # a hybrid prior: the residual model (see depth_model)
            return "finetune" if backend in FINETUNABLE_BACKENDS and weights is not None else "residual"
        if self.depth_model == "finetune" and weights is None:
            raise InputError("depth_model 'finetune' needs the prior network's weights (TrainInputs.prior_weights; "
                             "the pipeline passes them with --prior pydnet)")
        return self.depth_model

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (configs are never mutated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-able dict of every field (for the bundle's /meta)."""
        return dataclasses.asdict(self)

"""The Reverse tab's explanations (Markdown with LaTeX), kept apart from its wiring."""

INTRO = r"""
**Reverse process.** Start from pure noise $x_T \sim \mathcal{N}(0, I)$ and walk back to data.
At every step the network looks at $x_t$ and predicts the noise $\hat\varepsilon = \varepsilon_\theta(x_t, t)$
in it; that fixes a guess of the clean data,
$\hat x_0 = \big(x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon\big)/\sqrt{\bar\alpha_t}$, and the sampler
uses both to take a step to a less noisy $x_{t'}$ with $t' < t$.
"""

PANELS = r"""
**The three panels.** **$x_t$** is where the sampler is now. **predicted $x_0$** is the network's
current best guess of the final sample: blurry, average-looking at large $t$ (many clean images are
consistent with so much noise), sharp near the end. **predicted noise $\varepsilon$** is what the network
thinks it should remove (shown on $[-3, 3]$, mid-grey is 0). The frame's $t$ and step number are in its title.
"""

POINTS = r"""
**2-D points.** Left: the particles $x_t$ with their recent trails, over the model's denoising field at
the current $t$: the arrows show $-\hat\varepsilon(x, t)$ on a grid, the direction of the score
$\nabla_x \log p_t(x) \approx -\hat\varepsilon/\sqrt{1-\bar\alpha_t}$ (rescaled to stay legible). Right: each
particle's predicted $x_0$ over the training data (grey).
"""

SIGNALS = r"""
**Signals.** Each row shows the first few samples as lines: $x_t$, the predicted $x_0$ and the
predicted noise. Watch $\hat x_0$ settle long before $x_t$ stops being noisy.
"""

SAMPLERS = {
    "ddpm": r"""
**DDPM (ancestral).** Each step samples the Gaussian posterior of the forward process with the
predicted $\hat x_0$ in place of the unknown $x_0$ (Ho et al. 2020, eq. 6–7). For a step $t \to s$:

$$x_s = \frac{\sqrt{\bar\alpha_s}\,\beta_{t|s}}{1-\bar\alpha_t}\,\hat x_0 + \frac{\sqrt{\alpha_{t|s}}\,(1-\bar\alpha_s)}{1-\bar\alpha_t}\,x_t + \sigma_{t}\, z,\qquad z \sim \mathcal{N}(0, I)$$

with $\alpha_{t|s} = \bar\alpha_t/\bar\alpha_s$, $\beta_{t|s} = 1-\alpha_{t|s}$ and
$\sigma_t^2 = \frac{1-\bar\alpha_s}{1-\bar\alpha_t}\,\beta_{t|s}$. With $s = t-1$ this is the familiar
$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\hat\varepsilon\big) + \sigma_t z$.
Fresh noise enters at every step, so it needs many steps (all $T$ is the original algorithm).
""",
    "ddpm-beta": r"""
**DDPM, $\sigma_t^2 = \beta_t$.** The same ancestral step with the other noise level Ho et al. tried:
$\sigma_t^2 = \beta_{t|s}$, the upper bound, where DDPM's default $\sigma_t^2 = \frac{1-\bar\alpha_s}{1-\bar\alpha_t}\,\beta_{t|s}$
is the lower one. The lower bound is right when $x_0$ is known for sure; while the noise is as wide as the
data's own fine structure it is not, and the lower bound leaves that uncertainty out: even with a perfect
network, 1000 steps of the cosine schedule return rings about 7% thinner than the data's (the Evaluate
tab's recall sees it better than the eye). The upper bound keeps their width; on smooth data the two agree.
Smaller steps at low noise shrink the gap too: the shipped rings model uses the **logsnr** schedule for that.
""",
    "ddim": r"""
**DDIM.** A non-Markovian process with the same marginals $q(x_t \mid x_0)$ (Song et al. 2021, eq. 12).
For a step $t \to s$:

$$x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s-\sigma_t^2}\;\hat\varepsilon + \sigma_t\, z,\qquad
\sigma_t = \eta\,\sqrt{\frac{1-\bar\alpha_s}{1-\bar\alpha_t}}\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_s}}$$

With $\eta = 0$ no noise is added: the path from $x_T$ is deterministic (a discretised ODE) and
50 steps or fewer give good samples. $\eta = 1$ behaves like DDPM.
""",
    "dpm++2m": r"""
**DPM-Solver++ 2M.** A second-order multistep solver of the probability-flow ODE (Lu et al. 2022),
working in half-log-SNR time $\lambda_t = \log(\alpha_t/\sigma_t)$ with $\alpha_t = \sqrt{\bar\alpha_t}$,
$\sigma_t = \sqrt{1-\bar\alpha_t}$. For a step $t \to s$ with $h = \lambda_s - \lambda_t$:

$$x_s = \frac{\sigma_s}{\sigma_t}\,x_t - \alpha_s\,\big(e^{-h}-1\big)\,D,\qquad
D = \Big(1+\frac{1}{2r}\Big)\hat x_0^{(t)} - \frac{1}{2r}\,\hat x_0^{(\text{prev})},\quad r = \frac{h_\text{prev}}{h}$$

The first step uses $D = \hat x_0^{(t)}$ and the last returns $\hat x_0$. Reusing the previous
prediction buys second-order accuracy for free: 10–20 steps are often enough.
""",
    "dpm++2m-sde": r"""
**DPM-Solver++ 2M SDE.** The same second-order multistep solver, of the reverse *stochastic*
differential equation instead of the ODE (Lu et al. 2022): with $h$ and $D$ as in DPM-Solver++ 2M,

$$x_s = \frac{\sigma_s}{\sigma_t}\,e^{-h}\,x_t + \alpha_s\,\big(1-e^{-2h}\big)\,D + \sigma_s\sqrt{1-e^{-2h}}\;z,\qquad z \sim \mathcal{N}(0, I)$$

Fresh noise in every step, as in DDPM, corrects the errors of the network that a deterministic path
carries to the end; the second order keeps the steps few. On the shipped 2-D toys, 50 steps with
quadratic spacing land about as close to the data as DDPM's 1000.
""",
}

CLIP_AND_SPACING = r"""
**Clipping and spacing.** $\hat x_0$ is clipped to the range the model was trained on (images
$[-1, 1]$, 2-D points and signals their data's range), as in every sampler here: at large $t$ the
division by $\sqrt{\bar\alpha_t}$ magnifies the network's error, and without the clip some samples are
thrown far off. So at the first steps the predicted $x_0$ of 2-D points lies on the edges of that box.
A sampler with fewer than $T$ steps visits some of the timesteps: **linear** spacing evenly in $t$,
**quadratic** at $t_k = T\,(k/\text{steps})^2$, more of them at low noise, where the detail is decided.
"""

COMPARE = r"""
**Side by side.** Both samplers start from the **same** $x_T$ (drawn once from the seed) and run on
one clock in $t$: the one with fewer steps moves only when the clock reaches its next timestep,
so at any frame both show their state at about the same noise level.
"""

CONTROLS_HELP = """\
**Play** computes the trajectory and shows it as it is computed; **Pause** and **Play** again to
go on; **Stop** ends the run and keeps what was computed. Step with **◀ ▶**, or drag the
**frame** slider once frames exist. Changing a setting and pressing Play starts a new run.
"""


def tex_number(value: float) -> str:
    """A number to 3 significant digits as LaTeX: 4.04e-05 becomes 4.04 \\times 10^{-5} (typeset as is, the e
    reads as a variable and the exponent as a subtraction)."""
    text = f"{value:.3g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa} \\times 10^{{{int(exponent)}}}"


def explanation(sampler: str, kind: str | None, compare: bool = False, sampler_b: str | None = None) -> str:
    """The Markdown shown under the animation for the chosen sampler(s) and data kind."""
    parts = [INTRO, SAMPLERS.get(sampler, "")]
    if compare and sampler_b and sampler_b != sampler:
        parts.append(SAMPLERS.get(sampler_b, ""))
    parts.append({"points": POINTS, "signal": SIGNALS}.get(kind or "image", PANELS))
    parts.append(CLIP_AND_SPACING)
    if compare:
        parts.append(COMPARE)
    return "\n\n".join(p.strip("\n") for p in parts if p)  # each its own paragraph

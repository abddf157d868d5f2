"""The Forward tab's explanations (Markdown with LaTeX), kept apart from its wiring."""

CONTROLS_HELP = """\
Drag **t** to add noise. The same **seed** gives the same noise, so dragging back and forth
shows one noise draw fading in and out. The **schedule** sets how fast the signal fades.
"""

MAIN = r"""
**Forward process.** Noise is added in closed form, for any $t$ in one step:

$$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$$

with $\varepsilon \sim \mathcal{N}(0, I)$ and $\bar\alpha_t = \prod_{s=1}^{t} (1-\beta_s)$. The signal-to-noise ratio
$\mathrm{SNR}(t) = \bar\alpha_t / (1-\bar\alpha_t)$ falls from $\infty$ at $t=0$ to almost $0$ at $t=T$,
where $x_T$ is close to pure $\mathcal{N}(0, I)$ noise: the histogram of $x_t$ slides onto the dashed
normal curve.
"""

COMPARE = r"""
Same $x_0$, same $\varepsilon$, same $t$: only $\beta_t$ differs. The **cosine** schedule keeps
more signal in the middle steps than **linear**, which destroys most of it early. **logsnr** lowers
$\log \mathrm{SNR}$ by the same amount every step, so many more of its steps fall at low noise, where
fine detail is decided.
"""

CHAIN = r"""
**The noise addition layer.** Step by step, each step adds a little fresh noise:
$x_s = \sqrt{1-\beta_s}\,x_{s-1} + \sqrt{\beta_s}\,\varepsilon_s$ for $s = 1, \dots, t$.
After $t$ steps this Markov chain has the same distribution as the closed form $q(x_t \mid x_0)$. Both should
give an implied noise $\hat\varepsilon = (x_t - \sqrt{\bar\alpha_t}\,x_0)/\sqrt{1-\bar\alpha_t}$ that is
$\mathcal{N}(0, 1)$: same histogram, mean 0, std 1. The pictures differ pixel by pixel (different
noise draws) but not in distribution.
"""

CHAIN_IDLE = "Press **Run the chain to t** to add the noise one step at a time."
CHAIN_AT_ZERO = "At $t = 0$ no noise has been added yet: move **t** above 0 and run the chain."
CHAIN_RUNNING = "Adding noise {t} times, one step at a time…"

FILM = r"""
$x_t$ at evenly spaced $t$ from $0$ to $T$, all with the same noise $\varepsilon$.
"""

ENCODING = r"""
**Step encoding.** The denoiser must know how noisy its input is, so $t$ is fed to it as a vector
of sines and cosines at geometrically spaced frequencies (as in the Transformer):

$$e(t)_k = \sin(t\,\omega_k)$$

$$e(t)_{k+d/2} = \cos(t\,\omega_k)$$

$$\omega_k = 10000^{-2k/d}$$

for $k = 0,\dots,d/2-1$ ($d = 64$ here). Fast components tell nearby steps apart; slow ones
change smoothly over the whole range, so nearby $t$ get nearby codes. The network turns this
vector into its own embedding with a small MLP.
"""

UPLOAD_HINT = "Upload a PNG, JPEG, WebP, BMP, GIF or TIFF image; it is shrunk to at most 256 px."

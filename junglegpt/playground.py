"""The workshop interface of notebook 05: ipywidgets around junglegpt.generation.

Three tabs: Generate (text streams in as it is produced), Compare sizes (same prompt and seed on
every size), Next token (the ten most likely next tokens per size; click one to append it).

Built for a room of people: a click starts the work in a background thread, so the kernel stays
free to hear the Stop button (which ends a generation at the next token); while work runs, every
control is disabled and the status line says what is happening (loading a 100M model on a CPU
takes a while); any error, bad input or not, is shown in that line in plain words, and the
interface keeps working. The on_* methods do the work themselves and can be called directly
(the tests do); the buttons run them through `start`. Works with ipywidgets 7 (Colab) and 8.
"""

from __future__ import annotations

import html
import io
import threading

import ipywidgets as w
from IPython.display import display
from matplotlib.figure import Figure

from .generation import GenerationInputError, ModelShelf, Request, generate, next_tokens


class Playground:
    def __init__(self, shelf: ModelShelf, defaults: Request):
        self.shelf = shelf
        sizes = shelf.available()
        self.prompt = w.Textarea(value=defaults.prompt, description="Prompt", layout=w.Layout(width="95%"))
        self.size = w.Dropdown(options=sizes, value=defaults.size if defaults.size in sizes else (sizes or [None])[0],
                               description="Size")
        self.max_new_tokens = w.IntSlider(value=defaults.max_new_tokens, min=1, max=200, description="New tokens")
        self.temperature = w.FloatSlider(value=defaults.temperature, min=0.0, max=2.0, step=0.05,
                                         description="Temperature")
        self.top_k = w.IntSlider(value=defaults.top_k, min=0, max=200, description="Top-k")
        self.top_p = w.FloatSlider(value=defaults.top_p, min=0.05, max=1.0, step=0.05, description="Top-p")
        self.seed = w.IntText(value=defaults.seed, description="Seed")
        self.generate_button = w.Button(description="Generate", button_style="success")
        self.compare_button = w.Button(description="Compare sizes")
        self.next_button = w.Button(description="Show next tokens")
        self.stop_button = w.Button(description="Stop", button_style="danger", disabled=True,
                                    tooltip="end the generation at the next token")
        self.output = w.HTML()
        self.status = w.HTML()
        self.comparison = w.HTML()
        self.next_plot = w.Image(format="png")
        self.next_choices = w.HBox()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._usable: set[str] = set()  # sizes loaded and checked against their tokenizer
        self.generate_button.on_click(lambda _b: self.start(self.on_generate, "generating"))
        self.compare_button.on_click(lambda _b: self.start(self.on_compare, "generating with every size"))
        self.next_button.on_click(lambda _b: self.start(self.on_next_tokens, "scoring the next token"))
        self.stop_button.on_click(lambda _b: self.stop())

    # -- running work: one task at a time, in the background, stoppable --------------------------

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def _controls(self) -> list[w.Widget]:
        return [self.prompt, self.size, self.max_new_tokens, self.temperature, self.top_k, self.top_p, self.seed,
                self.generate_button, self.compare_button, self.next_button, *self.next_choices.children]

    def _set_busy(self, busy: bool) -> None:
        for control in self._controls():
            control.disabled = busy
        self.stop_button.disabled = not busy

    def start(self, task, doing: str) -> threading.Thread | None:
        """Run `task` in a background thread, with the controls disabled and errors shown in the status line."""
        if self.busy:
            self._say("Busy: wait for the current task, or press Stop.", error=True)
            return None
        self._stop.clear()
        self._set_busy(True)
        self._say(f"{doing} ...")

        def work():
            try:
                task()
            except GenerationInputError as err:
                self._say(str(err), error=True)
            except Exception as err:  # shown where the user looks, not lost in the widget log
                self._say(f"Something went wrong ({type(err).__name__}: {err}). The playground still works: "
                          "change a setting and try again.", error=True)
            finally:
                self._set_busy(False)

        self._worker = threading.Thread(target=work, name="playground", daemon=True)
        self._worker.start()
        return self._worker

    def stop(self) -> None:
        """End the running generation at the next token (the Stop button)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running task has finished (for tests and scripts)."""
        if self._worker is not None:
            self._worker.join(timeout)

    # -- the three tabs ---------------------------------------------------------------------------

    def request(self, size: str | None = None) -> Request:
        return Request(prompt=self.prompt.value, size=size or self.size.value, max_new_tokens=self.max_new_tokens.value,
                       temperature=self.temperature.value, top_k=self.top_k.value, top_p=self.top_p.value,
                       seed=self.seed.value)

    def _say(self, message: str, error: bool = False) -> None:
        color = "#b00020" if error else "#555"
        self.status.value = f"<span style='color:{color}'>{html.escape(message)}</span>"

    @staticmethod
    def _pre(text: str) -> str:
        return f"<pre style='white-space:pre-wrap'>{html.escape(text)}</pre>"

    def _sizes(self) -> list[str]:
        """The trained sizes, or a message saying there is none and how to train one (not 'unknown
        model size None', '0 sizes' or a plotting error)."""
        sizes = self.shelf.available()
        if not sizes:
            raise GenerationInputError(
                f"No trained model in {self.shelf.out.models}: train one first (./run_all.sh --sizes 1M, or "
                "03_train.ipynb), then run this cell again.")
        return sizes

    def _load(self, size: str) -> None:
        """Load a size before using it, saying so: the first use of a big model on a CPU takes a while.
        A model that does not load, or whose tokenizer has tokens its model has no embedding for (a
        tokenizer from a run with a bigger vocab_size: every prompt then ends in 'IndexError: index out
        of range'), is named with the command that retrains it."""
        if size in self._usable:
            return
        if size not in self._sizes():
            self.shelf.get(size)  # says which sizes there are, or that this one is not trained
        if not self.shelf.is_loaded(size):
            self._say(f"loading the {size} model (seconds; up to a minute for 100M on a CPU) ...")
        folder = self.shelf.out.model(size)
        retrain = f"Retrain it: ./run_all.sh --sizes {size} (or 03_train.ipynb with model_size=\"{size}\")."
        try:
            model, tokenizer = self.shelf.get(size)
        except GenerationInputError:
            raise
        except Exception as err:  # a file cut short or missing, weights of another shape
            first_line = (str(err).strip().splitlines() or [""])[0][:200]
            raise GenerationInputError(f"The {size} model in {folder} cannot be loaded ({type(err).__name__}: "
                                       f"{first_line}). {retrain}") from None
        if len(tokenizer) > model.config.vocab_size:
            raise GenerationInputError(
                f"The {size} model in {folder} does not fit its tokenizer: the tokenizer has {len(tokenizer):,} "
                f"tokens, the model {model.config.vocab_size:,} (a tokenizer from another run?). {retrain}")
        self._usable.add(size)

    def on_generate(self, _button=None) -> dict | None:
        pieces = [self.prompt.value]
        self.output.value = self._pre(self.prompt.value)

        def show(text):
            pieces.append(text)
            self.output.value = self._pre("".join(pieces))

        try:
            self._load(self.size.value)
            self._say("generating ...")
            result = generate(self.shelf, self.request(), on_text=show, stop=self._stop)
        except GenerationInputError as err:
            self._say(str(err), error=True)
            return None
        self.output.value = self._pre(result["text"])
        speed = f"{result['new_tokens']} tokens at {result['tokens_per_s']:.0f} tokens/s."
        stopped = ["Stopped."] if result["stopped"] else []
        self._say(" ".join([*stopped, *result["notes"], speed]))
        return result

    def on_compare(self, _button=None) -> list[dict]:
        results, cells = [], []
        try:
            sizes = self._sizes()
        except GenerationInputError as err:
            self._say(str(err), error=True)
            return results
        for size in sizes:
            if self._stop.is_set():
                break
            try:
                self._load(size)
                self._say(f"generating with {size} ...")
                result = generate(self.shelf, self.request(size), stop=self._stop)
            except GenerationInputError as err:
                self._say(str(err), error=True)
                return results
            results.append(result)
            cells.append(f"<td style='vertical-align:top;padding:4px'><b>{size}</b>{self._pre(result['text'])}</td>")
            rows = ["<tr>" + "".join(cells[i : i + 4]) + "</tr>" for i in range(0, len(cells), 4)]
            self.comparison.value = "<table>" + "".join(rows) + "</table>"  # each size as soon as it is done
        stopped = "Stopped: " if self._stop.is_set() else ""
        self._say(f"{stopped}Same prompt, same seed, {len(results)} sizes.")
        return results

    def on_next_tokens(self, _button=None) -> dict[str, list]:
        tables = {}
        try:
            for size in self._sizes():
                self._load(size)
                tables[size] = next_tokens(self.shelf, size, self.prompt.value)
        except GenerationInputError as err:
            self._say(str(err), error=True)
            return tables
        # A Figure drawn to PNG, not pyplot into an Output widget: this runs in a background thread.
        fig = Figure(figsize=(3.2 * len(tables), 3.5))
        axes = fig.subplots(1, len(tables), squeeze=False)
        for ax, (size, table) in zip(axes[0], tables.items(), strict=True):
            ax.barh([repr(t) for t, _ in table][::-1], [p for _, p in table][::-1])
            ax.set(title=size, xlabel="probability")
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=80)
        self.next_plot.value = png.getvalue()
        choices = tables.get(self.size.value) or next(iter(tables.values()), [])
        buttons = []
        for token, prob in choices:
            button = w.Button(description=f"{token!r} {prob:.0%}", layout=w.Layout(width="auto"))
            button.on_click(lambda _b, t=token: self.start(lambda: self.append(t), "scoring the next token"))
            buttons.append(button)
        self.next_choices.children = buttons
        self._say(f"Click a token to append it to the prompt (choices from the {self.size.value} model).")
        return tables

    def append(self, token: str) -> None:
        self.prompt.value += token
        self.on_next_tokens()

    def widget(self) -> w.Widget:
        controls = w.VBox([self.prompt, w.HBox([self.size, self.seed]), w.HBox([self.max_new_tokens, self.temperature]),
                           w.HBox([self.top_k, self.top_p])])
        tabs = w.Tab(children=[
            w.VBox([w.HBox([self.generate_button]), self.output]),
            w.VBox([self.compare_button, self.comparison]),
            w.VBox([self.next_button, self.next_choices, self.next_plot]),
        ])
        for i, title in enumerate(["Generate", "Compare sizes", "Next token"]):
            tabs.set_title(i, title)
        return w.VBox([controls, w.HBox([self.stop_button, self.status]), tabs])

    def show(self) -> None:
        display(self.widget())

"""The workshop interface of notebook 05: ipywidgets around junglegpt.generation.

Three tabs: Generate (text streams in as it is produced), Compare sizes (same prompt and seed on
every size), Next token (the ten most likely next tokens per size; click one to append it).
Every callback catches bad input and shows the message, so the interface keeps working.
"""

from __future__ import annotations

import html

import ipywidgets as w
import matplotlib.pyplot as plt
from IPython.display import display

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
        self.output = w.HTML()
        self.status = w.HTML()
        self.comparison = w.HTML()
        self.next_plot = w.Output()
        self.next_choices = w.HBox()
        self.generate_button.on_click(self.on_generate)
        self.compare_button.on_click(self.on_compare)
        self.next_button.on_click(self.on_next_tokens)

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

    def on_generate(self, _button=None) -> dict | None:
        pieces = [self.prompt.value]
        self.output.value = self._pre(self.prompt.value)
        self._say("generating ...")

        def show(text):
            pieces.append(text)
            self.output.value = self._pre("".join(pieces))

        try:
            result = generate(self.shelf, self.request(), on_text=show)
        except GenerationInputError as err:
            self._say(str(err), error=True)
            return None
        self.output.value = self._pre(result["text"])
        speed = f"{result['new_tokens']} tokens at {result['tokens_per_s']:.0f} tokens/s."
        self._say(" ".join([*result["notes"], speed]))
        return result

    def on_compare(self, _button=None) -> list[dict]:
        results, cells = [], []
        for size in self.shelf.available():
            try:
                result = generate(self.shelf, self.request(size))
            except GenerationInputError as err:
                self._say(str(err), error=True)
                return results
            results.append(result)
            cells.append(f"<td style='vertical-align:top;padding:4px'><b>{size}</b>{self._pre(result['text'])}</td>")
        rows = ["<tr>" + "".join(cells[i : i + 4]) + "</tr>" for i in range(0, len(cells), 4)]
        self.comparison.value = "<table>" + "".join(rows) + "</table>"
        self._say(f"Same prompt, same seed, {len(results)} sizes.")
        return results

    def on_next_tokens(self, _button=None) -> dict[str, list]:
        tables = {}
        try:
            for size in self.shelf.available():
                tables[size] = next_tokens(self.shelf, size, self.prompt.value)
        except GenerationInputError as err:
            self._say(str(err), error=True)
            return tables
        self.next_plot.clear_output(wait=True)
        with self.next_plot:
            fig, axes = plt.subplots(1, len(tables), figsize=(3.2 * len(tables), 3.5), squeeze=False)
            for ax, (size, table) in zip(axes[0], tables.items(), strict=True):
                ax.barh([repr(t) for t, _ in table][::-1], [p for _, p in table][::-1])
                ax.set(title=size, xlabel="probability")
            fig.tight_layout()
            plt.show()
        choices = tables.get(self.size.value) or next(iter(tables.values()), [])
        buttons = []
        for token, prob in choices:
            button = w.Button(description=f"{token!r} {prob:.0%}", layout=w.Layout(width="auto"))
            button.on_click(lambda _b, t=token: self.append(t))
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
            w.VBox([self.generate_button, self.output]),
            w.VBox([self.compare_button, self.comparison]),
            w.VBox([self.next_button, self.next_choices, self.next_plot]),
        ])
        for i, title in enumerate(["Generate", "Compare sizes", "Next token"]):
            tabs.set_title(i, title)
        return w.VBox([controls, self.status, tabs])

    def show(self) -> None:
        display(self.widget())

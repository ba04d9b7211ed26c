"""The hyperparameter form: validates as you type with the server's own rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static

from tuner.core.hyperparameters import (
    DATASETS,
    DEFAULT_DATASET,
    DEFAULT_MODEL,
    DEFAULT_OPTIMIZER,
    MODELS,
    OPTIMIZERS,
    FieldError,
    check_batch_size,
    check_epochs,
    check_learning_rate,
    check_seed,
)
from tuner.v1 import job_pb2

SERVER_FIELD_PREFIX = "hyperparameters."


def whole_number(field: str, check: Callable[[int], None]) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise FieldError(field, f"must be a whole number, got {text.strip()!r}") from None
        check(value)
        return value

    return parse


def number(field: str, check: Callable[[float], None]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise FieldError(field, f"must be a number, got {text.strip()!r}") from None
        check(value)
        return value

    return parse


PARSERS: dict[str, Callable[[str], int | float]] = {
    "epochs": whole_number("epochs", check_epochs),
    "learning_rate": number("learning_rate", check_learning_rate),
    "batch_size": whole_number("batch_size", check_batch_size),
    "seed": whole_number("seed", check_seed),
}


class Rule(Validator):
    """One field's rule from tuner.core.hyperparameters, as a Textual validator."""

    def __init__(self, field: str) -> None:
        super().__init__()
        self._parse = PARSERS[field]

    def validate(self, value: str) -> ValidationResult:
        try:
            self._parse(value)
        except FieldError as error:
            return self.failure(error.rule, value)
        return self.success()


class Field(Vertical):
    """A label, its control, and the control's error text under it."""

    DEFAULT_CSS = """
    Field {
        width: 1fr;
        height: auto;
        margin-right: 1;
    }
    Field > .field-error {
        display: none;
        height: auto;
    }
    Field.-invalid > .field-error {
        display: block;
    }
    """

    def __init__(self, label: str, control: Widget) -> None:
        super().__init__(id=f"field-{control.id}")
        self._label = label
        self._control = control

    def compose(self) -> ComposeResult:
        yield Label(self._label, classes="field-label")
        yield self._control
        yield Static("", classes="field-error", markup=False)

    def show_error(self, text: str) -> None:
        self.query_one(".field-error", Static).update(text)
        self.set_class(bool(text), "-invalid")


class HyperparameterForm(Vertical):
    """Posts `Submitted` with the hyperparameters when every field is valid and the user asks."""

    DEFAULT_CSS = """
    HyperparameterForm {
        height: auto;
    }
    HyperparameterForm > Horizontal {
        height: auto;
    }
    HyperparameterForm #submit {
        margin-top: 1;
        min-width: 10;
    }
    HyperparameterForm > .form-error {
        display: none;
        height: auto;
    }
    HyperparameterForm.-server-error > .form-error {
        display: block;
    }
    """

    @dataclass
    class Submitted(Message):
        form: HyperparameterForm
        hyperparameters: job_pb2.Hyperparameters

    def __init__(self, action: str = "Submit", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._action = action
        self._pending = False
        self._refocus = False  # the button had the focus when the request went out
        self._focus_after: Widget | None = None  # where disabling the button moved it

    def compose(self) -> ComposeResult:
        def text(field: str, value: str, placeholder: str) -> Input:
            return Input(
                value,
                placeholder=placeholder,
                id=field,
                validators=[Rule(field)],
                validate_on=["changed"],
                compact=True,
            )

        def choice(field: str, names: Mapping[str, int], default: str) -> Select[str]:
            options = [(name, name) for name in names]
            return Select(options, value=default, allow_blank=False, id=field, compact=True)

        with Horizontal():
            yield Field("Epochs", text("epochs", "1", "1..100"))
            yield Field("Learning rate", text("learning_rate", "0.001", "(0, 10]"))
            yield Field("Batch size", text("batch_size", "64", "1..8192"))
        with Horizontal():
            yield Field("Dataset", choice("dataset", DATASETS, DEFAULT_DATASET))
            yield Field("Model", choice("model", MODELS, DEFAULT_MODEL))
            yield Field("Optimizer", choice("optimizer", OPTIMIZERS, DEFAULT_OPTIMIZER))
            yield Field("Seed", text("seed", "0", "0.."))
            yield Button(self._action, id="submit", variant="primary", compact=True)
        yield Static("", classes="form-error", markup=False)

    def on_mount(self) -> None:
        for field in PARSERS:
            self._show(field, self.query_one(f"#{field}", Input).validate(self.value_of(field)))
        self._update_button()

    def value_of(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value

    @property
    def errors(self) -> dict[str, str]:
        """The fields whose current text breaks a rule, with the rule."""
        found = {}
        for field, parse in PARSERS.items():
            try:
                parse(self.value_of(field))
            except FieldError as error:
                found[field] = error.rule
        return found

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def pending(self) -> bool:
        return self._pending

    @pending.setter
    def pending(self, value: bool) -> None:
        """While a request is in flight the form cannot submit again.

        Disabling the focused Submit button moves the focus on; once the answer comes it goes
        back to the button (unless the user moved it meanwhile), so Enter submits the next.
        """
        button = self.query_one("#submit", Button)
        had_focus = button.has_focus
        self._pending = value
        self._update_button()
        if value:
            self._refocus = had_focus
            self._focus_after = self.screen.focused
        elif self._refocus and self.screen.focused is self._focus_after and not button.disabled:
            button.focus()

    def hyperparameters(self) -> job_pb2.Hyperparameters:
        """The form as a request; call only while `valid`."""

        def selected(field: str) -> str:
            return str(self.query_one(f"#{field}", Select).value)

        return job_pb2.Hyperparameters(
            epochs=int(PARSERS["epochs"](self.value_of("epochs"))),
            learning_rate=float(PARSERS["learning_rate"](self.value_of("learning_rate"))),
            batch_size=int(PARSERS["batch_size"](self.value_of("batch_size"))),
            dataset=DATASETS[selected("dataset")],
            model=MODELS[selected("model")],
            optimizer=OPTIMIZERS[selected("optimizer")],
            seed=int(PARSERS["seed"](self.value_of("seed"))),
        )

    def show_server_error(self, details: str) -> None:
        """Puts an INVALID_ARGUMENT from the server under its field, else under the form."""
        field, _, rule = details.removeprefix(SERVER_FIELD_PREFIX).partition(": ")
        if details.startswith(SERVER_FIELD_PREFIX) and rule and field in PARSERS:
            self.query_one(f"#field-{field}", Field).show_error(f"server: {rule}")
            self.query_one(f"#{field}", Input).add_class("-invalid")
        else:
            self.query_one(".form-error", Static).update(f"server: {details}")
            self.add_class("-server-error")

    def submit(self) -> None:
        """Posts Submitted if the form is valid and idle; otherwise points at the first error."""
        errors = self.errors
        if errors:
            self.query_one(f"#{next(iter(errors))}", Input).focus()
            self.app.bell()
            return
        if self._pending:
            return
        self.remove_class("-server-error")
        self.post_message(self.Submitted(self, self.hyperparameters()))

    def _show(self, field: str, result: ValidationResult | None) -> None:
        error = "" if result is None or result.is_valid else result.failure_descriptions[0]
        self.query_one(f"#field-{field}", Field).show_error(error)

    def _update_button(self) -> None:
        self.query_one("#submit", Button).disabled = self._pending or not self.valid

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id in PARSERS:
            self._show(event.input.id, event.validation_result)
        self.remove_class("-server-error")
        self._update_button()

    @on(Select.Changed)
    def _selected(self, event: Select.Changed) -> None:
        event.stop()
        self.remove_class("-server-error")

    @on(Input.Submitted)
    def _enter(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    @on(Button.Pressed, "#submit")
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.submit()

"""Settings: declared once, read from .env, the environment and flags, checked with named errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import settings as settings_module
from server.__main__ import parse_args
from server.settings import BY_NAME, SETTINGS, SettingError, Settings
from tests.harness import ROOT, run_server


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting in the environment; whatever a test (or `.env`) sets is undone after it."""
    for declared in SETTINGS:
        monkeypatch.delenv(declared.env, raising=False)
    return monkeypatch


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings.load(env_file=None)
    assert settings == Settings()
    assert (settings.host, settings.port, settings.engine, settings.model_path) == ("127.0.0.1", 3000, "auto", "")
    assert (settings.n_ctx, settings.threads, settings.parallel, settings.n_gpu_layers) == (4096, 0, 8, -1)
    assert (settings.prompt_template, settings.openai_prompt, settings.cache_ram_mib) == ("auto", "auto", 1024)
    assert settings.openai_timeout == 120.0 and isinstance(settings.openai_timeout, float)
    assert settings.allow_insecure is False and settings.dev is False


def test_every_attribute_is_declared_with_its_env_name() -> None:
    names = [declared.name for declared in SETTINGS]
    assert names == [name for name in Settings.__dataclass_fields__]
    assert len(set(names)) == len(names)
    assert BY_NAME["model_path"].env == "MODEL_PATH" and BY_NAME["model_path"].flags == ("--model", "--model-path")
    assert BY_NAME["api_key"].flags == () and BY_NAME["openai_api_key"].flags == ()
    assert {d.kind for d in SETTINGS} == {"str", "int", "float", "bool", "choice"}


def test_environment_overrides_defaults(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PORT", " 8080 ")
    clean_env.setenv("N_CTX", "8192")
    clean_env.setenv("OPENAI_TIMEOUT", "2.5")
    clean_env.setenv("ENGINE", "openai")
    clean_env.setenv("DEV", "On")
    clean_env.setenv("ALLOW_INSECURE", "no")
    clean_env.setenv("MODEL_TYPE", "")  # empty: the default
    settings = Settings.load(env_file=None)
    assert (settings.port, settings.n_ctx, settings.openai_timeout, settings.engine) == (8080, 8192, 2.5, "openai")
    assert settings.dev is True and settings.allow_insecure is False
    assert settings.model_type == "llama"


def test_dotenv_fills_in_but_the_real_environment_wins(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=4000\nQUEUE_SIZE=7\n# N_CTX=1\nPARALLEL=3\n")
    clean_env.setenv("PARALLEL", "5")
    settings = Settings.load(env_file=env_file)
    assert (settings.port, settings.queue_size, settings.parallel, settings.n_ctx) == (4000, 7, 5, 4096)


def test_flags_win_over_environment_and_dotenv(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("N_CTX=2048\nTHREADS=2\n")
    clean_env.setenv("N_CTX", "1024")
    args = parse_args(["--n-ctx", "512", "--model", "m.gguf", "--dev", "--allow-insecure", "no", "--parallel=4"])
    overrides = {k: v for k, v in vars(args).items() if k != "reload"}
    settings = Settings.load(env_file=env_file, **overrides)
    assert (settings.n_ctx, settings.threads, settings.model_path, settings.parallel) == (512, 2, "m.gguf", 4)
    assert settings.dev is True and settings.allow_insecure is False
    # typed values from code are taken as they are, and checked the same way
    assert Settings.load(env_file=None, port=1234).port == 1234
    with pytest.raises(SettingError, match=r"^PORT must be at most 65535, not 70000$"):
        Settings.load(env_file=None, port=70000)
    with pytest.raises(TypeError, match="no setting named 'n_ctxx'"):
        Settings.load(env_file=None, n_ctxx=1)


def test_settings_built_in_code_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9999")
    monkeypatch.setenv("OPENAI_MODEL", "from-env")
    monkeypatch.setenv("ENGINE", "not-an-engine")
    settings = Settings(openai_base_url="http://remote/v1")
    assert settings.port == 3000 and settings.openai_model == "" and settings.engine == "auto"
    assert settings.openai_base_url == "http://remote/v1"


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("PORT", "abc", "PORT must be an integer from 1 to 65535, not 'abc'"),
        ("PORT", "0", "PORT must be at least 1, not 0"),
        ("PORT", "3.5", "PORT must be an integer from 1 to 65535, not '3.5'"),
        ("N_CTX", "-5", "N_CTX must be at least 256, not -5"),
        ("N_CTX", "2000000", "N_CTX must be at most 1048576, not 2000000"),
        ("N_GPU_LAYERS", "-2", "N_GPU_LAYERS must be at least -1, not -2"),
        ("N_GPU_LAYERS", "all", "N_GPU_LAYERS must be an integer of at least -1, not 'all'"),
        ("OPENAI_TIMEOUT", "nan", "OPENAI_TIMEOUT must be a number from 0.1 to 86400, not nan"),
        ("OPENAI_TIMEOUT", "0", "OPENAI_TIMEOUT must be at least 0.1, not 0.0"),
        ("ENGINE", "x", "ENGINE must be one of auto, llama-cpp, ctransformers, openai, not 'x'"),
        ("OPENAI_PROMPT", "Chat", "OPENAI_PROMPT must be one of auto, chat, text, not 'Chat'"),
        ("DEV", "maybe", "DEV must be one of 1/0, true/false, yes/no, on/off, not 'maybe'"),
        (
            "PROMPT_TEMPLATE", "/no/such/template.jinja",
            "PROMPT_TEMPLATE must be auto, seed, or the path of an existing template file,"
            " not '/no/such/template.jinja'",
        ),
    ],
)
def test_a_bad_value_names_the_setting_and_what_it_wants(
    clean_env: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    clean_env.setenv(env, value)
    with pytest.raises(SettingError) as caught:
        Settings.load(env_file=None)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_bools_and_templates_accept_their_spellings(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for text, value in [("1", True), ("TRUE", True), ("yes", True), ("on", True),
                        ("0", False), ("False", False), ("NO", False), ("off", False)]:
        clean_env.setenv("DEV", text)
        assert Settings.load(env_file=None).dev is value, text
    template = tmp_path / "chat.jinja"
    template.write_text("{{ messages }}")
    for accepted in ("auto", "seed", str(template)):
        clean_env.setenv("PROMPT_TEMPLATE", accepted)
        assert Settings.load(env_file=None).prompt_template == accepted


@pytest.mark.parametrize(("args", "env"), [(["--port", "abc"], {}), ([], {"PORT": "abc"})])
def test_a_bad_port_is_one_line_and_exit_2(args: list[str], env: dict[str, str]) -> None:
    result = run_server(*args, env=env)
    assert result.returncode == 2
    assert result.stderr == "snake_llama: error: bad setting: PORT must be an integer from 1 to 65535, not 'abc'\n"


def test_help_lists_every_flag() -> None:
    result = run_server("--help", env={})
    assert result.returncode == 0
    for flag in ("--n-ctx", "--parallel", "--prompt-template", "--model", "--openai-prompt", "--reload"):
        assert flag in result.stdout
    for declared in SETTINGS:
        for flag in declared.flags:
            assert f"{flag} " in result.stdout, flag
    assert "--api-key" not in result.stdout and "--openai-api-key" not in result.stdout
    assert "Default: 4096. Range: 256 to 1048576." in " ".join(result.stdout.split())


def test_readme_table_and_env_example_are_generated_from_the_declarations() -> None:
    readme = (ROOT / "README.md").read_text()
    fix = "run: python -m server.settings --write"
    assert settings_module.readme_with_table(readme) == readme, fix
    assert (ROOT / ".env.example").read_text() == settings_module.env_example(), fix
    for declared in SETTINGS:
        assert f"| `{declared.env}` |" in readme
        assert f"{declared.env}=" in settings_module.env_example()
    assert "# API_KEY=\n" in settings_module.env_example() and "\nN_CTX=4096\n" in settings_module.env_example()


def test_speculative_takes_auto_off_the_ngram_drafters_or_a_draft_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Settings.load(env_file=None).speculative == "auto"
    draft = tmp_path / "draft.gguf"
    draft.write_bytes(b"GGUF")
    for accepted in ("auto", "off", "ngram_simple", "ngram_map_k", "ngram_map_k4v", "ngram_mod", f"draft:{draft}"):
        clean_env.setenv("SPECULATIVE", accepted)
        assert Settings.load(env_file=None).speculative == accepted
    for refused in ("on", "NGRAM_SIMPLE", "draft:", f"draft:{tmp_path / 'absent.gguf'}", str(draft)):
        clean_env.setenv("SPECULATIVE", refused)
        with pytest.raises(SettingError, match="SPECULATIVE must be auto, off, ngram_simple, .* or draft:<path"):
            Settings.load(env_file=None)


def test_a_missing_draft_model_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_server(env={"SPECULATIVE": f"draft:{tmp_path / 'absent.gguf'}"})
    assert result.returncode == 2
    assert result.stderr.startswith("snake_llama: error: bad setting: SPECULATIVE must be")
    assert "absent.gguf" in result.stderr
    assert result.stderr.count("\n") == 1

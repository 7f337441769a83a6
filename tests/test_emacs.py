"""The Emacs plugin end to end, in whatever Emacs and eglot this machine has (Debian 12: Emacs 28 with elpa-eglot 1.9).

A batch Emacs loads plugins/emacs/ghostwriter.el, connects eglot to the real `assistant lsp`, asks for a
continuation, sees it as ghost text after point, accepts it, and the server stores it as an editor sample.
Without Emacs, or without eglot (built in from Emacs 29, the `elpa-eglot` package before), it is skipped.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.samples.store import Store

from .conftest import ROOT

EMACS = shutil.which("emacs")
PROMPT = "The robot said that"

SCRIPT = """
(package-initialize)  ; Debian's elpa-eglot is a system package
(setq ghostwriter-command '({python} "-m" "assistant" "lsp" "--model" {model}))
(add-to-list 'load-path {plugin})
(require 'ghostwriter)
(find-file {story})
(text-mode)
(insert {prompt})
(apply #'eglot (eglot--guess-contact))
(defun wait-for (what seconds)
  (with-timeout (seconds (message "RESULT: timed out waiting for %s" what) (kill-emacs 1))
    (while (not (funcall what)) (accept-process-output nil 0.2))))
(wait-for #'eglot-current-server 120)
(ghostwriter-mode 1)
(let ((tries 0))  ; jsonrpc gives a request 10 s: the first may time out while the server loads the model
  (wait-for (lambda () (or ghostwriter--overlay
                           (progn (when (zerop (% tries 60)) (ghostwriter-suggest t)) (setq tries (1+ tries)) nil)))
            150))
(message "RESULT: ghost text %S" (overlay-get ghostwriter--overlay 'after-string))
(ghostwriter-accept)
(message "RESULT: buffer %S" (buffer-string))
(accept-process-output nil 2)  ; the server is told it was accepted
(condition-case e (eglot-shutdown (eglot-current-server))
  (error (let ((print-length nil) (print-level nil) (print-escape-newlines t)) (message "RESULT: shutdown %S" e))))
(kill-emacs 0)
"""


def _elisp(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.skipif(EMACS is None, reason="emacs is not installed")
def test_emacs_shows_the_continuation_after_point_and_tab_accepts_it(trained_model: Path, tmp_path: Path):
    eglot = subprocess.run([EMACS, "--batch", "--eval", "(progn (package-initialize) (princ (locate-library \"eglot\")))"],
                           capture_output=True, text=True, timeout=60)
    if eglot.returncode != 0 or not eglot.stdout.strip():
        pytest.skip("this Emacs has no eglot (Emacs 28: install the elpa-eglot package)")
    project = tmp_path / "novel"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)  # a project, as eglot wants one
    script = tmp_path / "run.el"
    script.write_text(SCRIPT.format(python=_elisp(sys.executable), model=_elisp(str(trained_model)),
                                    plugin=_elisp(str(ROOT / "plugins" / "emacs")),
                                    story=_elisp(str(project / "story.txt")), prompt=_elisp(PROMPT)))
    result = subprocess.run([EMACS, "--batch", "-l", str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    said = [line.removeprefix("RESULT: ") for line in result.stderr.splitlines() if line.startswith("RESULT: ")]
    assert result.returncode == 0, result.stderr[-3000:]
    ghost = said[0].removeprefix("ghost text ")
    assert ghost.startswith('#("') and len(ghost) > 5  # a propertized string: the suggestion, in its face
    assert said[1].startswith(f'buffer "{PROMPT}') and len(said[1]) > len(f'buffer "{PROMPT}"')
    with Store() as store:
        [sample] = store.find()
    assert sample.source == "editor" and said[1] == f"buffer {_elisp(PROMPT + sample.text)}"

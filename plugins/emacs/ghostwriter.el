;;; ghostwriter.el --- ghostwriter's continuations in Emacs, through eglot  -*- lexical-binding: t; -*-

;; Package-Requires: ((emacs "28.1") (eglot "1.9"))

;;; Commentary:

;; eglot starts `assistant lsp' for text and Markdown buffers.  Eglot has no inline completions
;; before Emacs 31, so `ghostwriter-mode' asks for textDocument/inlineCompletion itself after a
;; pause in typing, shows the first item as an overlay after point, accepts it with TAB and
;; reports shown/accepted to the server.  `ghostwriter-unconditional' inserts an unconditional sample.
;; Without `ghostwriter-mode', eglot's completion-at-point (M-TAB) still offers the continuation.

;;; Code:

(require 'eglot)

(defgroup ghostwriter nil "Continuations from a ghostwriter model." :group 'editing)

(defcustom ghostwriter-command '("assistant" "lsp")
  "How to start the server." :type '(repeat string))

(defcustom ghostwriter-settings '(:temperature 0.8 :autoChars 60 :stopAt "sentence")
  "Sent as initializationOptions: :model :temperature :topP :autoChars :maxChars :stopAt ..."
  :type 'plist)

(defcustom ghostwriter-idle-delay 0.25
  "Seconds of no typing before a suggestion is asked for." :type 'number)

(defface ghostwriter-suggestion '((t :inherit shadow)) "How a suggestion looks.")

(defclass ghostwriter-server (eglot-lsp-server) ()
  :documentation "The ghostwriter language server.")

(cl-defmethod eglot-initialization-options ((_server ghostwriter-server))
  ghostwriter-settings)

(dolist (mode '(text-mode markdown-mode org-mode))
  (add-to-list 'eglot-server-programs
               `(,mode . (ghostwriter-server . ,ghostwriter-command))))

(defvar-local ghostwriter--overlay nil)
(defvar-local ghostwriter--suggestion nil "(ID . TEXT) on show.")
(defvar-local ghostwriter--timer nil)

(defun ghostwriter--event (id event &optional accepted)
  (jsonrpc-async-request (eglot-current-server) :workspace/executeCommand
                         `(:command "ghostwriter.event"
                           :arguments ,(vconcat (delq nil (list id event accepted))))
                         :success-fn #'ignore :error-fn #'ignore))

(defun ghostwriter-clear ()
  "Hide the suggestion."
  (when ghostwriter--overlay (delete-overlay ghostwriter--overlay))
  (setq ghostwriter--overlay nil ghostwriter--suggestion nil))

(defun ghostwriter--show (text id)
  (ghostwriter-clear)
  (let ((ov (make-overlay (point) (point) nil t t)))
    (overlay-put ov 'after-string
                 (propertize text 'face 'ghostwriter-suggestion 'cursor 0))
    (setq ghostwriter--overlay ov ghostwriter--suggestion (cons id text))
    (when id (ghostwriter--event id "shown"))))

(defun ghostwriter-suggest (&optional invoked)
  "Ask for a continuation at point (INVOKED: asked for, not as you type)."
  (interactive (list t))
  (when-let ((server (eglot-current-server)))
    (let ((buffer (current-buffer)) (tick (buffer-chars-modified-tick)) (pos (point)))
      (jsonrpc-async-request
       server :textDocument/inlineCompletion
       `(,@(eglot--TextDocumentPositionParams) :context (:triggerKind ,(if invoked 1 2)))
       :success-fn
       (lambda (result)
         (let ((items (plist-get result :items)))
           (when (and (> (length items) 0) (buffer-live-p buffer))
             (with-current-buffer buffer
               (when (and (= tick (buffer-chars-modified-tick)) (= pos (point)))
                 (let* ((item (aref items 0))
                        (args (plist-get (plist-get item :command) :arguments)))
                   (ghostwriter--show (plist-get item :insertText) (and args (aref args 0)))))))))
       :error-fn #'ignore))))

;; Declared special before its first use below: byte-compiled, a `let' of an undeclared variable would bind it
;; lexically, the mode's keymap would stay active and TAB without a suggestion would call itself.
(defvar ghostwriter-mode)

(defun ghostwriter-accept ()
  "Insert the suggestion on show, or do what TAB does."
  (interactive)
  (if-let ((suggestion ghostwriter--suggestion))
      (progn (ghostwriter-clear)
             (insert (cdr suggestion))
             (when (car suggestion) (ghostwriter--event (car suggestion) "accepted" (cdr suggestion))))
    (let ((ghostwriter-mode nil))
      (call-interactively (key-binding (kbd "TAB"))))))

(defun ghostwriter-unconditional ()
  "Insert an unconditional sample at point."
  (interactive)
  (let ((answer (jsonrpc-request (eglot-current-server) :workspace/executeCommand
                                 `(:command "ghostwriter.unconditional"
                                   :arguments [,(eglot--path-to-uri (buffer-file-name))]))))
    (insert (plist-get answer :text))))

(defun ghostwriter--after-change (&rest _)
  (ghostwriter-clear)
  (when ghostwriter--timer (cancel-timer ghostwriter--timer))
  (setq ghostwriter--timer
        (run-with-idle-timer ghostwriter-idle-delay nil
                             (let ((buffer (current-buffer)))
                               (lambda () (when (buffer-live-p buffer)
                                            (with-current-buffer buffer (ghostwriter-suggest))))))))

(defun ghostwriter--moved ()
  (when (and ghostwriter--overlay (/= (point) (overlay-start ghostwriter--overlay))
             (not (eq this-command 'self-insert-command)))
    (ghostwriter-clear)))

(defvar ghostwriter-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "TAB") #'ghostwriter-accept)
    map))

;;;###autoload
(define-minor-mode ghostwriter-mode
  "Ghost-text continuations from the ghostwriter server (start it with M-x eglot)."
  :lighter " Ghost" :keymap ghostwriter-mode-map
  (if ghostwriter-mode
      (progn (add-hook 'after-change-functions #'ghostwriter--after-change nil t)
             (add-hook 'post-command-hook #'ghostwriter--moved nil t))
    (remove-hook 'after-change-functions #'ghostwriter--after-change t)
    (remove-hook 'post-command-hook #'ghostwriter--moved t)
    (ghostwriter-clear)))

(provide 'ghostwriter)
;;; ghostwriter.el ends here

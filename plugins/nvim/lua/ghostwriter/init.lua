-- ghostwriter for Neovim (0.7 and later): the `assistant lsp` server's continuations as ghost text.
--
-- Neovim before 0.12 has no client side for textDocument/inlineCompletion, so this plugin asks for it
-- itself after a pause in typing (the debounce), shows the first item as virtual text at the cursor,
-- inserts it on the accept key and tells the server what became of it (shown, accepted, partial).

local M = {}

local defaults = {
  cmd = { "assistant", "lsp" },   -- how to start the server
  filetypes = { "text", "markdown", "mail", "gitcommit", "tex", "rst", "org" },
  settings = {},                  -- sent as initializationOptions: model, temperature, autoChars, maxChars, stopAt...
  debounce_ms = 250,              -- pause in typing before a suggestion is asked for
  accept_key = "<Tab>",           -- inserts the whole suggestion (otherwise the key does what it always does)
  accept_word_key = "<M-Right>",  -- inserts its next word
  highlight = "Comment",
}

local config = vim.deepcopy(defaults)
local client_id = nil
local timer = nil
local ns = vim.api.nvim_create_namespace("ghostwriter")
local ghost = nil  -- { buf, row, col, text, id, taken, mark }
local own_tick = nil  -- the buffer's changedtick after the plugin inserted a word itself: not the user typing

local function client()
  return client_id and vim.lsp.get_client_by_id(client_id) or nil
end

-- client:request on 0.11 and later, client.request before
local function request(c, method, params, handler, buf)
  if vim.fn.has("nvim-0.11") == 1 then return c:request(method, params, handler, buf) end
  return c.request(method, params, handler, buf)
end

local function event(id, kind, accepted)
  local c = client()
  if c then
    request(c, "workspace/executeCommand",
      { command = "ghostwriter.event", arguments = accepted and { id, kind, accepted } or { id, kind } },
      function() end)
  end
end

function M.clear()
  if ghost then
    pcall(vim.api.nvim_buf_del_extmark, ghost.buf, ns, ghost.mark)
    ghost = nil
  end
end

local function show(buf, row, col, text, id, taken)
  M.clear()
  local rest = text:sub(#taken + 1)
  local lines = vim.split(rest, "\n", { plain = true })
  local opts = { virt_text = { { lines[1], config.highlight } }, hl_mode = "combine" }
  opts.virt_text_pos = vim.fn.has("nvim-0.10") == 1 and "inline" or "overlay"
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do table.insert(opts.virt_lines, { { lines[i], config.highlight } }) end
  end
  local mark = vim.api.nvim_buf_set_extmark(buf, ns, row, col, opts)
  ghost = { buf = buf, row = row, col = col, text = text, id = id, taken = taken, mark = mark }
end

-- Ask for a continuation at the cursor; trigger 2 is automatic (as you type), 1 invoked.
function M.suggest(trigger)
  local c = client()
  local inserting = vim.fn.mode() == "i"
  if not c or not inserting and trigger ~= 1 then return end
  local buf = vim.api.nvim_get_current_buf()
  local win = vim.api.nvim_get_current_win()
  local cursor = vim.api.nvim_win_get_cursor(win)
  local tick = vim.api.nvim_buf_get_changedtick(buf)
  local encoding = c.offset_encoding or "utf-16"
  local params = vim.lsp.util.make_position_params(win, encoding)
  params.context = { triggerKind = trigger or 2 }
  local col = cursor[2]
  local line = vim.api.nvim_get_current_line()
  if not inserting and #line > 0 then
    -- in normal mode the cursor is on a character: continue after it, where `a` would start inserting
    local after = vim.fn.byteidx(line, vim.fn.charidx(line, col) + 1)
    col = after >= 0 and after or #line
    params.position.character = vim.lsp.util.character_offset(buf, cursor[1] - 1, col, encoding)
  end
  request(c, "textDocument/inlineCompletion", params, function(err, result)
    if err or not result or not result.items or #result.items == 0 then return end
    -- a suggestion for text that has changed since, or for another place, is stale
    local now = vim.api.nvim_win_get_cursor(0)
    if vim.api.nvim_get_current_buf() ~= buf or vim.api.nvim_buf_get_changedtick(buf) ~= tick
        or now[1] ~= cursor[1] or now[2] ~= cursor[2] then
      return
    end
    local item = result.items[1]
    local id = item.command and item.command.arguments and item.command.arguments[1]
    show(buf, cursor[1] - 1, col, item.insertText, id, "")
    if id then event(id, "shown") end
  end, buf)
end

local function schedule(a)
  if own_tick and a and vim.api.nvim_buf_get_changedtick(a.buf) == own_tick then return end  -- a word taken
  M.clear()
  if not timer then timer = vim.loop.new_timer() end
  timer:stop()
  timer:start(config.debounce_ms, 0, vim.schedule_wrap(function() M.suggest(2) end))
end

local function insert(g, text)
  local row, col = g.row, g.col
  local lines = vim.split(text, "\n", { plain = true })
  vim.api.nvim_buf_set_text(g.buf, row, col, row, col, lines)
  local last_row = row + #lines - 1
  local last_col = (#lines == 1 and col or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { last_row + 1, last_col })
  return last_row, last_col
end

-- Insert the whole suggestion; true if there was one.
function M.accept()
  if not ghost then return false end
  local g = ghost
  M.clear()
  insert(g, g.text:sub(#g.taken + 1))
  if g.id then event(g.id, "accepted", g.text) end
  return true
end

-- Insert the suggestion's next word (and the space before it); the rest stays on show.
function M.accept_word()
  if not ghost then return false end
  local g = ghost
  local rest = g.text:sub(#g.taken + 1)
  local word = rest:match("^%s*%S+") or rest
  M.clear()
  local row, col = insert(g, word)
  own_tick = vim.api.nvim_buf_get_changedtick(g.buf)
  local taken = g.taken .. word
  if g.id then event(g.id, taken == g.text and "accepted" or "partial", taken) end
  if taken ~= g.text then show(g.buf, row, col, g.text, g.id, taken) end
  return true
end

-- Whether the server is up and initialized.
function M.ready()
  local c = client()
  return c ~= nil and c.server_capabilities ~= nil
end

-- The text on show, for tests and statuslines.
function M.visible()
  return ghost and ghost.text:sub(#ghost.taken + 1) or ""
end

-- An unconditional sample from the server, inserted at the cursor.
function M.unconditional()
  local c = client()
  if not c then return vim.notify("ghostwriter: the server is not running", vim.log.levels.ERROR) end
  local buf = vim.api.nvim_get_current_buf()
  request(c, "workspace/executeCommand",
    { command = "ghostwriter.unconditional", arguments = { vim.uri_from_bufnr(buf) } },
    function(err, result)
      if err then return vim.notify("ghostwriter: " .. err.message, vim.log.levels.ERROR) end
      M.clear()  -- a suggestion for the text before the sample no longer fits
      local cursor = vim.api.nvim_win_get_cursor(0)
      local lines = vim.split(result.text, "\n", { plain = true })
      vim.api.nvim_buf_set_text(buf, cursor[1] - 1, cursor[2], cursor[1] - 1, cursor[2], lines)
    end, buf)
end

local function attach(buf)
  if not vim.tbl_contains(config.filetypes, vim.bo[buf].filetype) then return end
  local lsp_config = {
    name = "ghostwriter", cmd = config.cmd, init_options = config.settings, root_dir = vim.loop.cwd(),
  }
  if vim.lsp.start then  -- 0.8 and later: starts the server once and attaches the buffer
    client_id = vim.lsp.start(lsp_config, { bufnr = buf }) or client_id
  else
    client_id = client_id or vim.lsp.start_client(lsp_config)
    vim.lsp.buf_attach_client(buf, client_id)
  end
end

local function map(key, fn)
  if not key or key == "" then return end
  vim.keymap.set("i", key, function()
    if not fn() then
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(key, true, false, true), "n", false)
    end
  end, { desc = "ghostwriter" })
end

function M.setup(opts)
  config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  local group = vim.api.nvim_create_augroup("ghostwriter", { clear = true })
  vim.api.nvim_create_autocmd("FileType", { group = group, callback = function(a) attach(a.buf) end })
  vim.api.nvim_create_autocmd("TextChangedI", { group = group, callback = schedule })
  vim.api.nvim_create_autocmd("CursorMovedI", { group = group, callback = function()
    local cursor = vim.api.nvim_win_get_cursor(0)
    if ghost and (cursor[1] - 1 ~= ghost.row or cursor[2] ~= ghost.col) then M.clear() end
  end })
  vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, { group = group, callback = M.clear })
  map(config.accept_key, M.accept)
  map(config.accept_word_key, M.accept_word)
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) then attach(buf) end
  end
end

return M

"""The character-level LSTM model kind: model, data, presets, adapter."""

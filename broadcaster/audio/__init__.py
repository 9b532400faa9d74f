"""Loudspeaker audio: clip library, loudness, playlists, publishing."""

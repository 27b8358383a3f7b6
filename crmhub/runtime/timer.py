"""A nameko timer whose interval comes from the config (a decorator argument cannot read it)."""
from nameko.timer import Timer


class ConfiguredTimer(Timer):
    """Fires every ``config[config_key]`` seconds (``default`` if unset), and once at start:
    work that fell due while the service was down is done as soon as it is back."""

    def __init__(self, config_key: str, default: float, **kwargs):
        self.config_key = config_key
        self.default = default
        super().__init__(interval=default, eager=True, **kwargs)

    def setup(self):
        super().setup()
        self.interval = float(self.container.config.get(self.config_key) or self.default)


timer = ConfiguredTimer.decorator

"""The sitetwin workbench in the browser (Dash + plotly)."""

"""MSDA Lab — the Streamlit app's home page."""

import streamlit as st

st.set_page_config(page_title="MSDA Lab", layout="wide")
st.title("MSDA Lab")
st.write(
    "See and measure mixed sample data augmentation. The mask explorer, the CAM/occlusion studies and the "
    "robustness runs are coming to this app; the library behind them is `msda`."
)

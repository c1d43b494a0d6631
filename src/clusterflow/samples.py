"""Sample tables with planted segments, generated deterministically (for the demo and tests)."""
from __future__ import annotations

import numpy as np
import pandas as pd

# Four customer segments: (age, income k$, visits/month, basket $, tenure months), channel, plan.
SEGMENTS = {
    "young-online": ((27, 40, 12, 40, 10), {"app": 0.95, "web": 0.05}, {"basic": 0.95, "plus": 0.05}),
    "family-store": ((40, 75, 7, 120, 40), {"store": 0.95, "web": 0.05}, {"plus": 0.95, "basic": 0.05}),
    "affluent-premium": ((52, 115, 4, 200, 70), {"web": 0.95, "store": 0.05}, {"premium": 0.95, "plus": 0.05}),
    "retired-occasional": ((68, 50, 2, 70, 100), {"store": 0.95, "phone": 0.05}, {"basic": 0.95, "plus": 0.05}),
}
SPREAD = np.array([4.0, 9.0, 1.5, 18.0, 9.0])
NUMERIC = ["age", "income_k", "visits_per_month", "basket_value", "tenure_months"]


def customers(n_rows: int = 2000, seed: int = 7, with_segment: bool = True) -> pd.DataFrame:
    """A customer table with four planted segments, a few missing values and a noise column.

    ``segment`` holds the planted label (drop it before clustering, keep it to score).
    """
    rng = np.random.default_rng(seed)
    names = list(SEGMENTS)
    segment = rng.choice(len(names), size=n_rows, p=[0.35, 0.3, 0.15, 0.2])
    centres = np.array([SEGMENTS[n][0] for n in names], dtype=float)
    numbers = centres[segment] + rng.normal(size=(n_rows, len(NUMERIC))) * SPREAD
    frame = pd.DataFrame(np.round(numbers, 2), columns=NUMERIC)
    frame.insert(0, "customer_id", [f"C{100000 + i}" for i in range(n_rows)])
    frame["channel"] = [_draw(rng, SEGMENTS[names[s]][1]) for s in segment]
    frame["plan"] = [_draw(rng, SEGMENTS[names[s]][2]) for s in segment]
    frame.loc[rng.random(n_rows) < 0.02, "income_k"] = np.nan
    frame.loc[rng.random(n_rows) < 0.02, "channel"] = None
    if with_segment:
        frame["segment"] = [names[s] for s in segment]
    return frame


def _draw(rng: np.random.Generator, weights: dict[str, float]) -> str:
    return rng.choice(list(weights), p=list(weights.values()))


# Four planted review topics: what a review is about, and what it says about it.
REVIEW_TOPICS = {
    "electronics": (
        ["the battery", "the screen", "the charger", "the bluetooth pairing", "the camera", "the touchpad",
         "the firmware update", "the speaker"],
        ["lasts about two days on one charge", "drains overnight even when the phone is idle",
         "connects to my laptop instantly", "overheats while charging", "shows sharp colours in daylight",
         "crashes whenever I open the settings app", "picks up every word on video calls",
         "needed a factory reset after a week"],
    ),
    "restaurant": (
        ["the pasta", "our waiter", "the dessert", "the wood-fired pizza", "the wine list", "the soup of the day",
         "the weekend brunch", "the kitchen"],
        ["was served hot and nicely seasoned", "took forty minutes to reach our table",
         "tasted fresh with plenty of garlic and basil", "had a great choice of local red wines",
         "was far too salty for my taste", "came with a lovely homemade tiramisu",
         "was busy but the staff stayed friendly", "ran out of bread before lunch"],
    ),
    "travel": (
        ["the hotel room", "the check-in desk", "the flight", "the beach resort", "the airport shuttle",
         "the guided city tour", "the hostel dormitory", "the overnight train"],
        ["had a balcony with a view of the harbour", "kept us waiting an hour after landing",
         "was delayed twice because of the weather", "offered free breakfast by the pool",
         "was noisy until late because of the nightclub next door", "showed us the old town and the cathedral",
         "lost our luggage on the way to the island", "left on time and the cabin crew were kind"],
    ),
    "apparel": (
        ["the jacket", "these running shoes", "the denim jeans", "the wool sweater", "the summer dress",
         "the size guide", "the stitching on the sleeves", "the winter boots"],
        ["fits true to size across the shoulders", "shrank after the first wash",
         "feels soft and warm on cold mornings", "gave me blisters on my heels after a short jog",
         "faded after a few washes", "was accurate so I ordered my usual size",
         "came apart at the seams within a month", "keeps my feet dry in the snow"],
    ),
}
REVIEW_OPENERS = ["Honestly,", "Overall", "To be fair,", "I noticed that", "In my experience", "After a month,",
                  "As expected", "Surprisingly,"]
REVIEW_CLOSERS = ["Would buy again.", "Not sure I would recommend it.", "Five stars from me.", "Two stars.",
                  "Mixed feelings overall.", "Good value for the money.", ""]


def reviews(n_rows: int = 300, seed: int = 5, with_segment: bool = True) -> pd.DataFrame:
    """Short reviews with four planted topics (electronics, restaurant, travel, apparel).

    Each review is two sentences about its topic between a shared opener and closer,
    so the wording varies while the topic stays; ``segment`` holds the planted topic.
    """
    rng = np.random.default_rng(seed)
    names = list(REVIEW_TOPICS)
    topic = rng.choice(len(names), size=n_rows)
    texts = []
    for t in topic:
        subjects, details = REVIEW_TOPICS[names[t]]
        first, second = rng.choice(len(subjects), size=2, replace=False)
        texts.append(" ".join(filter(None, [
            f"{rng.choice(REVIEW_OPENERS)} {subjects[first]} {rng.choice(details)}.",
            f"{subjects[second][0].upper()}{subjects[second][1:]} {rng.choice(details)}.",
            rng.choice(REVIEW_CLOSERS)])))
    frame = pd.DataFrame({"review_id": [f"R{10000 + i}" for i in range(n_rows)], "review": texts})
    if with_segment:
        frame["segment"] = [names[t] for t in topic]
    return frame


DEMO_DATA_DIR = "clusterflow-runs/demo-data"


def write_demo_table(n_rows: int = 2000, folder: str = DEMO_DATA_DIR) -> tuple[str, pd.Series]:
    """Write the demo customer table (without its planted labels) as CSV; return its path and the labels."""
    import os

    os.makedirs(folder, exist_ok=True)
    table = customers(n_rows)
    path = os.path.join(folder, "customers.csv")
    table.drop(columns="segment").to_csv(path, index=False)
    return path, table.set_index("customer_id")["segment"]


def agreement_with_planted(run_uri: str, labels: pd.Series) -> float:
    """Adjusted Rand index between a run's published assignments and planted labels (indexed by id)."""
    from sklearn.metrics import adjusted_rand_score

    assignments = pd.read_parquet(f"{run_uri}/assignments.parquet")
    id_column = assignments.columns[0]
    return float(adjusted_rand_score(labels.loc[assignments[id_column]].to_numpy(), assignments["cluster"]))

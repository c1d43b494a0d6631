"""Sample tables with planted segments, generated deterministically (for the demo and tests)."""
from __future__ import annotations

import os

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


# Per customer segment: a review topic, a product-photo look (RGB colour, pattern) and a home city.
SEGMENT_MEDIA = {
    "young-online": ("electronics", (200, 40, 40), "horizontal", (52.52, 13.40)),      # Berlin
    "family-store": ("restaurant", (40, 160, 60), "vertical", (48.86, 2.35)),          # Paris
    "affluent-premium": ("travel", (40, 70, 200), "checker", (51.51, -0.13)),         # London
    "retired-occasional": ("apparel", (220, 190, 40), "diagonal", (40.42, -3.70)),    # Madrid
}
CITY_SPREAD_DEGREES = 0.25


def draw_photo(rng: np.random.Generator, colour: tuple[int, int, int], pattern: str, size: int = 64) -> np.ndarray:
    """A (size, size, 3) uint8 picture: a jittered colour in a striped or checkered pattern, with noise."""
    y, x = np.mgrid[0:size, 0:size]
    period = rng.uniform(6, 12)
    phase = rng.uniform(0, period)
    coordinate = {"horizontal": y, "vertical": x, "diagonal": x + y, "checker": None}[pattern]
    if coordinate is None:
        on = ((x + phase) // (period / 2) + (y + phase) // (period / 2)) % 2 == 0
    else:
        on = (coordinate + phase) % period < period / 2
    tint = np.clip(np.asarray(colour) + rng.normal(0, 15, 3), 0, 255)
    picture = np.where(on[..., None], tint, tint * 0.35 + 150)
    return np.clip(picture + rng.normal(0, 12, picture.shape), 0, 255).astype(np.uint8)


def multimodal_customers(n_rows: int, folder: str, seed: int = 7, image_size: int = 64,
                         with_segment: bool = True) -> pd.DataFrame:
    """The customer table plus a review (text), a product photo (image) and a home location (geo).

    Photos are written as PNG files under ``folder/photos/`` and the ``photo`` column holds
    their paths relative to ``folder`` (where the table belongs). Each planted segment
    has its own review topic, photo colour and pattern, and home city; about 2% of
    photos and locations are missing, and 3% of customers live in another segment's city.
    """
    import os

    from PIL import Image

    rng = np.random.default_rng(seed)
    frame = customers(n_rows, seed=seed)
    pool = reviews(4 * n_rows + 100, seed=seed)
    texts = {topic: iter(group.tolist()) for topic, group in pool.groupby("segment")["review"]}
    media = [SEGMENT_MEDIA[s] for s in frame["segment"]]
    frame["review"] = [next(texts[topic]) for topic, *_ in media]

    os.makedirs(os.path.join(folder, "photos"), exist_ok=True)
    photos = []
    for customer, (_, colour, pattern, _) in zip(frame["customer_id"], media):
        name = f"photos/{customer}.png"
        Image.fromarray(draw_photo(rng, colour, pattern, image_size)).save(os.path.join(folder, name))
        photos.append(name)
    frame["photo"] = photos
    frame.loc[rng.random(n_rows) < 0.02, "photo"] = None

    cities = np.array([m[3] for m in media])
    movers = rng.random(n_rows) < 0.03
    cities[movers] = np.array([m[3] for m in SEGMENT_MEDIA.values()])[rng.integers(0, 4, movers.sum())]
    home = cities + rng.normal(0, CITY_SPREAD_DEGREES, cities.shape)
    frame["latitude"], frame["longitude"] = np.round(home[:, 0], 5), np.round(home[:, 1], 5)
    frame.loc[rng.random(n_rows) < 0.02, ["latitude", "longitude"]] = np.nan
    if not with_segment:
        frame = frame.drop(columns="segment")
    return frame


DEMO_DATA_DIR = "clusterflow-runs/demo-data"


def write_demo_table(n_rows: int = 2000, folder: str = DEMO_DATA_DIR) -> tuple[str, pd.Series]:
    """Write the multimodal demo table (without its planted labels) as CSV beside its photos.

    Returns the table's path and the planted segments by customer id.
    """
    table = multimodal_customers(n_rows, folder)
    path = os.path.join(folder, "customers.csv")
    table.drop(columns="segment").to_csv(path, index=False)
    return path, table.set_index("customer_id")["segment"]


def agreement_with_planted(run_uri: str, labels: pd.Series) -> float:
    """Adjusted Rand index between a run's published assignments and planted labels (indexed by id)."""
    from sklearn.metrics import adjusted_rand_score

    from .run_folder import RunFolder

    folder = RunFolder(run_uri)
    assignments = folder.assignments(folder.manifest())
    id_column = assignments.columns[0]
    return float(adjusted_rand_score(labels.loc[assignments[id_column]].to_numpy(), assignments["cluster"]))

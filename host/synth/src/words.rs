//! Word lists for titles, credits and stickers (generic English words and made-up names).

use rand::Rng;
use rand::seq::IndexedRandom;

const WORDS: &[&str] = &[
    "NIGHT",
    "RIVER",
    "GOLD",
    "ECHO",
    "HEART",
    "CITY",
    "LIGHTS",
    "DUST",
    "ROAD",
    "FIRE",
    "STONE",
    "BLUE",
    "WILD",
    "DREAM",
    "SUMMER",
    "GHOST",
    "NEON",
    "HOLLOW",
    "MIDNIGHT",
    "SIGNAL",
    "WAVES",
    "TIDES",
    "SILVER",
    "ORBIT",
    "PRAIRIE",
    "STATIC",
    "PARADE",
    "VELVET",
    "THUNDER",
    "HARBOR",
    "MIRROR",
    "PULSE",
    "CANYON",
    "FEVER",
    "SATELLITE",
    "CROWN",
    "EMPIRE",
    "SHADOWS",
    "BLOOM",
    "STREET",
    "HUSTLE",
    "MOTEL",
    "HIGHWAY",
    "ANTHEM",
    "VOLUME",
    "SESSIONS",
    "LIVE",
    "TAPES",
    "NORTH",
    "SOUTHERN",
    "ELECTRIC",
    "COSMIC",
    "PAPER",
    "GLASS",
    "HONEY",
    "WHISKEY",
    "RODEO",
    "BASS",
    "SYSTEM",
    "CIRCUIT",
    "PHASE",
    "FUTURE",
    "RETURN",
    "FOREVER",
    "YOUNG",
    "LOVE",
];

const NAMES: &[&str] = &[
    "THE VANTAGE",
    "MAYA ROSE",
    "KID OTTO",
    "LUNA PARK",
    "DJ KESTREL",
    "JONAH REED",
    "THE MARROWS",
    "SILK ATLAS",
    "BIG TOMMY",
    "NOVA LINE",
    "ELLA GRAY",
    "HANK DALTON",
    "THE CINDERS",
    "MC VOLTA",
    "ARIA BLUE",
    "ROSCOE",
    "TWIN PEAKS",
    "JUNE CARTER WELLS",
    "PRISM",
    "LIL MOSS",
    "THE HOLLOW PINES",
    "KAYA",
    "DELTA NINE",
    "RUBY KANE",
];

const STICKERS: &[&str] = &[
    "NEW",
    "SALE",
    "$9.99",
    "$12.99",
    "2 FOR $20",
    "REMASTERED",
    "LIMITED",
    "DELUXE",
    "BONUS TRACKS",
    "180G VINYL",
    "STEREO",
    "INCLUDES HIT",
    "SPECIAL EDITION",
    "IMPORT",
    "ORIGINAL MOTION PICTURE",
    "SOUNDTRACK",
    "LIVE",
    "EXPANDED",
    "DIGITALLY REMASTERED",
];

/// A random title of one to three words.
pub fn title(rng: &mut impl Rng) -> String {
    let n = rng.random_range(1..=3);
    (0..n)
        .map(|_| *WORDS.choose(rng).unwrap_or(&"ECHO"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A random artist name.
pub fn artist(rng: &mut impl Rng) -> String {
    NAMES.choose(rng).unwrap_or(&"PRISM").to_string()
}

/// Random sticker or banner text.
pub fn sticker(rng: &mut impl Rng) -> String {
    STICKERS.choose(rng).unwrap_or(&"NEW").to_string()
}

/// A single random word.
pub fn word(rng: &mut impl Rng) -> String {
    WORDS.choose(rng).unwrap_or(&"ECHO").to_string()
}

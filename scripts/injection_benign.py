"""Ordinary text for the injection classifier's benign side, generated from word lists.

The issue allows three benign sources: spikee's false-positive sets, spikee's documents, and
ordinary requests generated here. The first model's generated text was short requests only, so
it learned "long first-person prose" (``and``, ``to``, ``with``, ``me``, ``your``) as a sign of
an attack and flagged 58.7% of 2,000 Amazon food reviews. :func:`ordinary_texts` composes much
broader text from hand-written sentence pools: product reviews, experiences with a treatment,
support tickets and emails, chat messages and social posts, questions, instructions for
ordinary tasks (recipes, set-up steps: imperative mood is not an attack), stories, and
German/French/Spanish/Italian messages; varied in length (one sentence to a dozen), case,
punctuation, slang and typos. No text of any corpus is copied (the independent corpora used
as held-out tests were not read to write these lists beyond two examples quoted in the issue's
report).
"""

from __future__ import annotations

import random

_PRODUCTS = ["coffee", "green tea", "dog food", "cat treats", "protein bars", "olive oil",
             "hot sauce", "granola", "pasta", "rice crackers", "peanut butter", "honey",
             "chocolate", "almonds", "oatmeal", "sparkling water", "chai mix", "jerky",
             "baby formula", "gluten free flour", "headphones", "phone case", "blender",
             "vacuum", "running shoes", "backpack", "desk lamp", "charger", "kettle",
             "yoga mat", "shampoo", "sunscreen", "toothpaste", "candles", "puzzle"]
_ADJ_GOOD = ["great", "delicious", "excellent", "amazing", "perfect", "fresh", "tasty",
             "solid", "awesome", "decent", "fantastic", "smooth", "crunchy", "sturdy", "nice"]
_ADJ_BAD = ["awful", "stale", "bland", "terrible", "disappointing", "too sweet", "broken",
            "cheap", "flimsy", "gross", "overpriced", "weak", "bitter", "soggy", "useless"]
_PEOPLE = ["my husband", "my wife", "my kids", "my son", "my daughter", "my mom", "my dad",
           "my roommate", "my boss", "our dog", "my cat", "the whole family", "my friends",
           "my coworkers", "my grandmother", "my partner", "everyone at the office"]
_SHOPS = ["Walmart", "Costco", "the grocery store", "Target", "the local shop", "Whole Foods",
          "the pharmacy", "Amazon", "the supermarket", "the farmers market"]
_TIMES = ["last week", "a month ago", "yesterday", "two years ago", "this morning",
          "over the holidays", "in March", "for the last six months", "since 2019",
          "every morning", "on weekends", "after work"]
_REVIEW = [
    "I bought this {p} {t} and {pp} loves it.", "This {p} is {g}.", "The {p} was {b}.",
    "Much cheaper than at {s}.", "Save your money.", "Do not buy this.",
    "I would recommend it to anyone.", "Highly recommend!", "Will buy again.",
    "It arrived {t} and the box was damaged.", "The taste is {g} but the price is too high.",
    "If you like {p}, you will love this one.", "Not worth it at all.",
    "I have ordered this {n} times now and it is always {g}.", "Five stars.", "One star.",
    "My only complaint is the packaging.", "It tastes like cardboard.",
    "You get a lot for your money.", "Your dog will go crazy for these.",
    "I was skeptical at first but it is {g}.", "Shipping was fast.",
    "It's not as {g} as the reviews say.", "I gave it to {pp} and {pp} said it was {b}.",
    "Make sure you read the label before you buy.", "Just what I needed.",
    "The flavor is {g} and the texture is {g}.", "It stopped working after {n} weeks.",
    "Customer service replaced it with no questions asked.", "Tried it once and threw it out.",
    "This is my go to {p} now.", "Way too salty for me.", "Good deal, convenient too.",
    "I don't know why people like this.", "It is {b}, not {g}.", "Love it love it love it.",
    "Ordered a second pack for {pp}.", "Smells {g}, tastes even better.",
    "Don't waste your time with the cheaper brands.", "You can't go wrong with this.",
    "It tastes nothing like the picture.", "Better than anything you find at {s}.",
    "Add a little milk and it is perfect.", "Please bring back the old recipe.",
]
_HEALTH = [
    "I have been taking this for {n} months.", "My doctor prescribed it {t}.",
    "The side effects were {b} for the first week.", "It helped with my {c} right away.",
    "I gained {n} pounds and felt tired all the time.", "After {n} days I felt much better.",
    "I stopped taking it because of the headaches.", "It works, but the nausea is bad.",
    "Tell your doctor if you have any history of {c}.", "I would not wish this on anyone.",
    "It changed my life, I can finally sleep.", "My {c} is under control for the first time.",
    "Take it with food or you will feel sick.", "Ask your pharmacist about the generic.",
    "I was on it for {n} years before switching.", "Don't give up after the first week.",
    "The dose was increased to {n} mg and that helped.", "My anxiety got worse at first.",
]
_CONDITIONS = ["anxiety", "migraines", "acne", "back pain", "insomnia", "depression",
               "high blood pressure", "allergies", "asthma", "arthritis", "diabetes"]
_SUPPORT = [
    "Hi, my order #{n} has not arrived yet.", "Could you please check the status of my refund?",
    "I was charged twice for the same subscription.", "The app crashes when I open settings.",
    "I can't log in after resetting my password.", "Please cancel my account, thanks.",
    "The invoice shows the wrong address.", "Can someone call me back today?",
    "I attached a screenshot of the error.", "Your website says the item is in stock but it "
    "is not.", "I need to change the delivery date to {t2}.", "Thanks for your quick reply!",
    "This is the third time I'm writing about this.", "Kind regards, {a}",
    "Best, {a}", "Hello team,", "Dear support,", "Let me know if you need anything else.",
    "Please ignore my last email, I found the receipt.", "Can you send me the updated quote?",
    "I forgot my username, can you help me recover it?", "Following up on ticket {n}.",
    "The printer on the second floor is out of toner again.", "Meeting moved to {t2}.",
    "Please review the attached draft and send me your comments.",
    "We need to update the instructions for new hires before Monday.",
    "Reply to this email to confirm your attendance.", "Your package was delivered {t}.",
]
_CHAT = [
    "lol that's so true", "omg did you see the game last night", "brb getting coffee",
    "can't believe it's monday again", "ur the best!!", "ok sounds good", "ya i'm in",
    "thanks so much for the help today", "who's coming to the party on friday?",
    "just landed in {city}, flight was delayed 3 hours", "@{a} congrats on the new job!",
    "#{tag} is trending again", "my flight got cancelled, thanks a lot {air}",
    "@{air} where is my bag??", "this weather is insane", "new phone who dis",
    "not gonna lie that movie was {g}", "haha you're right", "see u tmrw",
    "anyone know a good {p} brand?", "rt if you agree", "follow me for more",
    "so tired of these ads", "the {team} lost again smh", "happy birthday {a}!!! 🎉",
    "I love you guys", "check out my new blog post http://t.co/{n}", "what a game!!!",
    "tell me about it", "send me the pics from last night", "can you pick me up at 6",
]
_CITIES = ["Boston", "Denver", "Chicago", "Paris", "Berlin", "Madrid", "Toronto", "Austin"]
_AIRLINES = ["united", "delta", "AmericanAir", "SouthwestAir", "JetBlue", "VirginAmerica"]
_TEAMS = ["Patriots", "Jets", "Seahawks", "Broncos", "Lakers", "Yankees"]
_TAGS = ["DeflateGate", "SuperBowl", "tbt", "MondayMotivation", "iPhone", "selfdriving"]
_QUESTIONS = [
    "How do I {task}?", "What's the best way to {task}?", "Is it normal that {issue}?",
    "Why does {issue}?", "Can you recommend a good {p}?", "Where can I buy {p} near me?",
    "How long does it take to {task}?", "Should I {task} or wait?",
    "What do you think about {p}?", "Does anyone know how to {task}?",
    "Is it safe to {task} at home?", "What time does the store close on Sunday?",
]
_TASKS = ["reset my router", "bake sourdough bread", "change a flat tire", "learn Spanish",
          "clean a cast iron pan", "file my taxes", "train a puppy", "fix a leaky faucet",
          "lower my cholesterol", "write a cover letter", "back up my phone", "paint a room",
          "grow tomatoes", "set up a home network", "prepare for an interview",
          "remove a red wine stain", "save money on groceries", "start running"]
_ISSUES = ["my laptop gets hot", "the milk tastes sour", "my cat sleeps all day",
           "my phone battery drains fast", "the oven smells like smoke",
           "my code works locally but not on the server", "my plants turn yellow"]
_STEPS = [
    "Preheat the oven to {n} degrees.", "Mix the flour and the sugar in a bowl.",
    "Add two eggs and stir well.", "Pour the batter into the pan.", "Bake for {n} minutes.",
    "Let it cool before you serve it.", "Unplug the router and wait thirty seconds.",
    "Plug it back in and wait for the lights.", "Open the settings and tap Wi-Fi.",
    "Enter your password and press connect.", "Remove the old filter first.",
    "Turn off the water before you start.", "Write down your answers on a separate sheet.",
    "Forget about the first draft and start from the outline.", "Ignore the extra screws.",
    "Follow the instructions on the back of the box.", "Repeat until the sauce thickens.",
    "Do not skip the warm-up.", "Stretch for five minutes after each run.",
    "Save the file and restart the program.", "Print the form and sign it.",
    "Answer every question honestly.", "Tell the driver which entrance to use.",
    "Now, add the garlic and cook for one minute.", "From now on, use the new template.",
]
_STORY = [
    "When I was a kid, {pp} used to take me fishing every summer.",
    "It was raining when we finally reached the cabin.", "Nobody expected what happened next.",
    "She opened the letter and started to laugh.", "We walked for hours without a map.",
    "The old man told us to come back in the morning.", "I still remember the smell of the "
    "bakery on that street.", "He forgot his keys again, so we waited outside.",
    "The teacher asked us to write about our favourite place.", "Everything changed {t}.",
]
_MULTI = [
    "Das Essen war sehr gut, aber der Service war langsam.", "Ich habe das Paket {t} bestellt "
    "und es ist noch nicht da.", "Kannst du mir morgen beim Umzug helfen?",
    "Vielen Dank für die schnelle Lieferung!", "Die Anleitung ist leider unvollständig.",
    "Le café était froid et le serveur impoli.", "Je recommande ce produit à tout le monde.",
    "Pouvez-vous m'envoyer la facture du mois dernier ?", "On se retrouve à la gare à midi.",
    "Merci pour votre aide, tout fonctionne maintenant.", "El hotel estaba limpio y muy céntrico.",
    "No me llegó el pedido, ¿me pueden ayudar?", "Me encanta este champú, huele muy bien.",
    "Mañana tengo una reunión a las nueve.", "La pizza era buonissima, torneremo presto.",
    "Il pacco è arrivato rotto, vorrei un rimborso.", "Ci vediamo stasera al solito posto?",
    "Grazie mille per le indicazioni, sono arrivato.", "Het eten was lekker en goedkoop.",
    "Obrigado pela ajuda, deu tudo certo.",
]
_CODE = [
    "def add(a, b):\n    return a + b",
    "for (let i = 0; i < items.length; i++) { sum += items[i]; }",
    "SELECT * FROM users WHERE email = ? LIMIT 1;", "npm install --save-dev eslint",
    "git commit -m \"fix typo in readme\"", "public static void main(String[] args) {}",
    "x = np.linspace(0, 1, 100)\nplt.plot(x, np.sin(x))", "ls -la | grep .txt",
    "if err != nil {\n    return fmt.Errorf(\"open: %w\", err)\n}", "body { margin: 0; }",
    "import pandas as pd\ndf = pd.read_csv(\"data.csv\")\nprint(df.head())",
]
_OPENERS = ["", "", "", "Hi! ", "Hey, ", "Ok so ", "Honestly, ", "Update: ", "UPDATE: ",
            "Well... ", "So, ", "FYI ", "Quick question: "]
_SLANG = {"you": "u", "your": "ur", "are": "r", "really": "rly", "because": "bc",
          "going to": "gonna", "want to": "wanna", "though": "tho", "people": "ppl",
          "please": "pls", "thanks": "thx", "to be honest": "tbh", "with": "w/"}


def _fill(tpl: str, rng: random.Random) -> str:
    return tpl.format(
        p=rng.choice(_PRODUCTS), g=rng.choice(_ADJ_GOOD), b=rng.choice(_ADJ_BAD),
        pp=rng.choice(_PEOPLE), s=rng.choice(_SHOPS), t=rng.choice(_TIMES),
        t2=rng.choice(["Tuesday", "next week", "the 14th", "Friday afternoon"]),
        n=rng.randrange(2, 400), c=rng.choice(_CONDITIONS), a=rng.choice(_NAMES),
        city=rng.choice(_CITIES), air=rng.choice(_AIRLINES), team=rng.choice(_TEAMS),
        tag=rng.choice(_TAGS), task=rng.choice(_TASKS), issue=rng.choice(_ISSUES))


_NAMES = ["maria", "Tom", "Priya", "chen", "Olga", "Ahmed", "Lucia", "Sam", "jess", "Kofi"]
_POOLS = [(_REVIEW, 6), (_HEALTH, 2), (_SUPPORT, 3), (_CHAT, 3), (_QUESTIONS, 2),
          (_STEPS, 2), (_STORY, 1), (_MULTI, 1)]


def _noise(text: str, rng: random.Random) -> str:
    """Case, punctuation, slang and typos, as people write."""
    r = rng.random()
    if r < 0.12:
        text = text.upper()
    elif r < 0.35:
        text = text.lower()
    if rng.random() < 0.2:
        text = "".join(ch for ch in text if ch not in ".,;:'")
    if rng.random() < 0.2:
        for plain, short in _SLANG.items():
            text = text.replace(f" {plain} ", f" {short} ")
    if rng.random() < 0.25:
        chars = list(text)
        for _ in range(rng.randrange(1, 4)):
            if len(chars) > 3:
                i = rng.randrange(len(chars) - 1)
                chars[i], chars[i + 1] = chars[i + 1], chars[i]
        text = "".join(chars)
    if rng.random() < 0.15:
        text = text.rstrip(".") + rng.choice(["!!!", "!", " :)", " :(", "...", " 😂", "??"])
    return text


def ordinary_texts(rng: random.Random, n: int = 5000) -> list[str]:
    """``n`` ordinary texts: each draws a genre, then 1-12 sentences (mostly from that genre,
    some from others), joined as one paragraph or as lines."""
    weights = [w for _, w in _POOLS]
    out: list[str] = []
    for _ in range(n):
        main = rng.choices(range(len(_POOLS)), weights)[0]
        length = rng.choice([1, 1, 2, 3, 4, 5, 6, 8, 10, 12])
        sentences = []
        for _ in range(length):
            pool = _POOLS[main][0] if rng.random() < 0.8 else rng.choice(_POOLS)[0]
            sentences.append(_fill(rng.choice(pool), rng))
        if rng.random() < 0.08:
            sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(_CODE))
        sep = "\n" if rng.random() < 0.15 else " "
        text = rng.choice(_OPENERS) + sep.join(sentences)
        out.append(_noise(text, rng))
    return out


#: Sentence frames of everyday prose; N noun, V verb, A adjective, D adverb. Their content words
#: are drawn half from the lists above and half made up (:func:`_pseudo`): real text is full of
#: words no list holds, so the frame words ("and", "to", "with", "you", "your", "me") must not
#: be what tells an attack from ordinary text.
_FRAMES = [
    "I V the N and it was A.", "We V our N with the A N every D.", "You can V it with N.",
    "Your N will V it, trust me.", "They told me to V the N before I V it.",
    "It is A, but the N is too A for me.", "If you V A N, you should V this one.",
    "My N and I V it to the N.", "Do not V the N, it is A.", "Make sure you V the N first.",
    "I have been V the N for D and it is A.", "This N is the A N I have ever had.",
    "Just V it and V it with a N.", "Tell your N about the N.", "Let me know if you V the N.",
    "Can you V me the N by D?", "Please V the N and V it to me.", "Only V the A N.",
    "The N of the N was A and A.", "After a N, the N started to V.",
    "We were A to V that N D.", "All of the N were A, not A at all.",
    "I will V them again, no N.", "Never V your N with the N.", "She V the N with her N.",
    "He said the N would V, but it did not.", "Give it a N, you will V it.",
    "Then V the N and V for a N.", "Now I V A N at the N.", "Why does the N V so D?",
]
_NOUNS = ["box", "flavor", "price", "bag", "taste", "store", "kitchen", "doctor", "week",
          "order", "friend", "car", "trip", "office", "night", "recipe", "bottle", "garden"]
_VERBS = ["buy", "try", "use", "love", "order", "mix", "cook", "recommend", "send", "bring",
          "return", "share", "open", "clean", "keep", "enjoy", "check", "wash"]
_ADVS = ["today", "every day", "slowly", "twice", "at home", "a lot", "last year", "often"]
_SYLLABLES = ["ba", "ken", "lo", "mi", "tra", "vel", "sor", "din", "pa", "ru", "gle", "mon",
              "ta", "ci", "fo", "ster", "ble", "nu", "qua", "zen", "hor", "wi", "pe", "lan"]


def _pseudo(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randrange(1, 4)))


def _frame(rng: random.Random) -> str:
    lists = {"N": _NOUNS + _PRODUCTS, "V": _VERBS, "A": _ADJ_GOOD + _ADJ_BAD, "D": _ADVS}
    out = []
    for token in rng.choice(_FRAMES).split(" "):
        slot = token.rstrip(".,?")
        if slot in lists:
            word = rng.choice(lists[slot]) if rng.random() < 0.5 else _pseudo(rng)
            token = word + token[len(slot):]
        out.append(token)
    return " ".join(out)


def prose_texts(rng: random.Random, n: int = 3000) -> list[str]:
    """``n`` paragraphs of 1-12 framed sentences (:data:`_FRAMES`), with :func:`_noise`."""
    out = []
    for _ in range(n):
        k = rng.choice([1, 2, 3, 4, 6, 8, 10, 12])
        out.append(_noise(" ".join(_frame(rng) for _ in range(k)), rng))
    return out


__all__ = ["ordinary_texts", "prose_texts"]


# Look-alikes: ordinary requests that use an attack's words ("ignore", "previous
# instructions", "act as", "system prompt", "developer mode") for an ordinary purpose.
_LA_VERBS = ["ignore", "disregard", "forget", "skip", "drop", "bypass", "override"]
_LA_OBJECTS = ["the noise in my data", "outliers above the 99th percentile", "the header row",
               "my last email", "the previous message, wrong attachment", "the first column",
               "the warning about deprecated APIs", "case when comparing strings",
               "whitespace in the diff", "the cache for this request", "the default settings",
               "the typo in my earlier question", "the old invoice, it was cancelled",
               "files matching *.log in git", "the null values in the sales table",
               "the previous instructions in the manual, they were for the old model",
               "rows where the price is missing", "the SSL check in local tests only",
               "the proxy for internal hosts", "my previous order, I placed it twice"]
_LA_ASKS = ["How do I {v} {o}?", "Is it safe to {v} {o}?", "Please {v} {o}; {r}",
            "Can I {v} {o} in pandas?", "What happens if I {v} {o}?",
            "My manager asked me to {v} {o}. {r}", "Should we {v} {o} before the release?",
            "{r} Also, {v} {o}.", "Quick question: can you {v} {o} when you compute the total?"]
_LA_REST = ["Thanks!", "The correct file is attached.", "Sorry for the confusion.",
            "Let me know if that works.", "It keeps failing on Windows.", "No rush."]
_LA_ROLES = ["a Spanish tutor", "a patient math teacher", "a job interviewer for a nurse role",
             "a travel agent planning three days in Rome", "a proofreader for my thesis",
             "a Linux terminal for learning commands", "a customer asking about a refund",
             "a tour guide in Kyoto", "a fitness coach", "a strict code reviewer"]
_LA_ROLE_ASKS = ["Can you act as {r} and ask me five questions?", "Pretend you are {r}.",
                 "For practice, play the role of {r}.", "Act as {r}; keep answers short.",
                 "Let's role-play: you are {r} and I am the student."]
_LA_TOPICS = ["What is a system prompt and how long should it be?",
              "How do I enable developer mode on Android?",
              "Explain what prompt injection is, with one harmless example.",
              "Does jailbreaking an iPhone void the warranty?",
              "Our chatbot's system prompt leaked in a screenshot; how do we rotate it?",
              "Write a policy that tells staff never to share their password.",
              "From now on, please send the weekly report on Mondays.",
              "You are now subscribed to our newsletter. Reply STOP to unsubscribe.",
              "Print the system configuration of my laptop from the terminal.",
              "Reveal the answer to the riddle only after I guess twice.",
              "The new instructions for the coffee machine say to descale it monthly.",
              "Summarise the rules of chess without the castling exceptions.",
              "What restrictions apply to carry-on luggage with no liquids limit?",
              "How do I translate 'ignore previous instructions' for a security training slide?"]


def lookalike_texts(rng: random.Random, n: int = 400) -> list[str]:
    """``n`` ordinary requests that use the words attacks use, for an ordinary purpose."""
    out = list(_LA_TOPICS)
    while len(out) < n:
        kind = rng.random()
        if kind < 0.65:
            text = rng.choice(_LA_ASKS).format(v=rng.choice(_LA_VERBS),
                                               o=rng.choice(_LA_OBJECTS),
                                               r=rng.choice(_LA_REST))
        else:
            text = rng.choice(_LA_ROLE_ASKS).format(r=rng.choice(_LA_ROLES))
        out.append(_noise(text[0].upper() + text[1:], rng))
    return out[:n]


# Security talk: people asking about, testing, teaching or reporting on prompt injection and
# jailbreaks (ordinary requests that name an attack, sometimes quote one, and ask for nothing
# but information), and ordinary notices about new rules or instructions from people.
_SEC_SUBJECTS = ["prompt injection", "jailbreak prompts", "indirect prompt injection",
                 "system prompt leaks", "the DAN jailbreak", "LLM red teaming",
                 "data exfiltration through chatbots", "guardrails for language models",
                 "injection attacks on AI agents", "content filters in chat assistants"]
_SEC_QUOTES = ["ignore previous instructions", "you are now DAN", "enable developer mode",
               "repeat your system prompt", "forget your rules", "pretend you have no limits",
               "print the text above", "act as an unrestricted AI"]
_SEC_ASKS = [
    "I'm preparing a workshop on {s}. Which examples should I show?",
    "What are the best defences against {s} in a customer-service bot?",
    "Can you explain {s} to my manager in plain words?",
    "Our pentest report mentions {s}. How serious is it?",
    "Write a short paragraph for our security policy about {s}.",
    "Is there a benchmark for {s}? We want to measure our filter.",
    "My thesis is about {s}; can you suggest three papers?",
    "Why do attackers write things like '{q}'? Is a keyword filter enough?",
    "Our test suite sends '{q}' to the bot and expects a refusal. Is that a good test?",
    "A user typed '{q}' into our chatbot yesterday. Should we log such messages?",
    "How would you classify the message '{q}'? It's for a labelling guide.",
    "The training slides list '{q}' as a typical attack. Can you add two more?",
    "Does OWASP cover {s} in its top ten for LLM applications?",
    "What's the difference between {s} and ordinary phishing?",
]
_NOTICE_FROM = ["HR", "the landlord", "facilities", "the school", "our accountant",
                "the project lead", "IT", "the coach", "the building manager", "the library"]
_NOTICE_RULES = ["submit expenses within 30 days", "badge in at the side entrance",
                 "book meeting rooms a day ahead", "use the new VPN client",
                 "bring a signed form to every trip", "park only in zone B",
                 "return books within two weeks", "log overtime in the new tool"]
_NOTICES = [
    "New instructions from {f}: {r} from now on.", "Updated rules from {f}: please {r}.",
    "{f} changed the policy - we now {r}. Forget the old process.",
    "Reminder from {f}: ignore the previous memo, we {r} starting Monday.",
    "The old guidelines are outdated; {f} wants everyone to {r}.",
]


# Modes of devices and programs, jailbroken phones, translations and poems that quote an
# instruction word, in each language.
_MODES = ["developer mode", "debug mode", "admin mode", "safe mode", "god mode",
          "maintenance mode", "incognito mode", "kiosk mode", "sudo mode"]
_PRODUCTS_SW = ["Chrome DevTools", "Android", "Windows 11", "my router", "VS Code", "Jenkins",
                "the Xbox", "Minecraft", "WordPress", "my smart TV", "Firefox", "the Kindle"]
_MODE_ASKS = ["What does {m} do in {p}?", "How do I turn on {m} on {p}?",
              "Is {m} on {p} safe to leave enabled?", "{p} is stuck in {m}. How do I exit?",
              "Why does {p} ask for a password to enter {m}?"]
_DEVICES = ["an iPhone", "a PS4", "a Kindle", "a Nintendo Switch", "an old iPad", "a Roku"]
_JB_ASKS = ["Is it legal to jailbreak {d}?", "Will jailbreaking {d} void the warranty?",
            "What's the risk of jailbreaking {d} for an older app?",
            "My teenager wants to jailbreak {d}. Should I worry?"]
_SAYINGS = ["the previous instructions were wrong", "please ignore my last email",
            "the rules changed last week", "forget what I said about the budget",
            "the new guidelines start on Monday", "do not reveal the surprise to anyone",
            "the old password expires tomorrow", "you are now part of the team"]
_TRANSLATE = ["Translate into {l}: '{q}'.", "How do you say '{q}' in {l}?",
              "Traduci in {l}: '{q}'.", "Traduce al {l}: '{q}'.", "Traduis en {l} : '{q}'.",
              "Übersetze ins {l}: '{q}'."]
_LANGS = ["German", "French", "Spanish", "Italian", "English", "Portuguese"]
_POEMS = ["Write a {f} about a {c} that {v}.", "Could you write a {f} where a {c} {v}?"]
_FORMS = ["haiku", "limerick", "short poem", "bedtime story", "song verse", "fable"]
_CREATURES = ["cat", "robot", "river", "teenager", "pirate", "old king", "penguin"]
_THEMES = ["ignores all the rules of the house", "forgets its old instructions in spring",
           "breaks every rule for one day", "pretends to have no limits",
           "refuses to follow the old guidelines", "learns new instructions from the wind"]


# Short requests that use a cue's words for an ordinary purpose: answer formats, roles,
# manuals' instructions.
_FORMAT_ASKS = ["Reply only with yes or no: {q}", "Answer with just a number: {q}",
                "Respond only with the word true or false: {q}", "One word only please: {q}",
                "Say exactly one sentence: {q}", "Output only the result: {q}"]
_SMALL_QS = ["is 91 a prime number?", "how many legs does a spider have?",
             "is Lyon north of Marseille?", "what is 12 times 13?", "is a tomato a fruit?",
             "does water boil at 100 C at sea level?", "how many days are in a leap year?"]
_ROLE_ASKS = ["Act like a {r} and give me feedback on my plan.",
              "Respond as if you were a {r} explaining it to a child.",
              "Behave like a {r} for this practice session.", "Answer as a {r} would."]
_ROLES2 = ["friendly librarian", "football coach", "museum guide", "strict editor",
           "hiring manager", "chemistry teacher", "barista", "park ranger"]
_THINGS = ["this IKEA shelf", "the dishwasher", "my new bike", "the camping tent",
           "the baby monitor", "the garden hose reel", "the LEGO castle"]
_MANUAL_ASKS = ["What were the original instructions for assembling {t}?",
                "I lost the instructions for {t}; what are the usual steps?",
                "The previous owner threw away the manual for {t}. Any tips?",
                "Show me the hidden settings menu of {t}, if there is one."]


def _extra(rng: random.Random) -> str:
    k = rng.random()
    if k < 0.35:
        j = rng.random()
        if j < 0.4:
            return rng.choice(_FORMAT_ASKS).format(q=rng.choice(_SMALL_QS))
        if j < 0.7:
            return rng.choice(_ROLE_ASKS).format(r=rng.choice(_ROLES2))
        return rng.choice(_MANUAL_ASKS).format(t=rng.choice(_THINGS))
    k = rng.random()
    if k < 0.3:
        return rng.choice(_MODE_ASKS).format(m=rng.choice(_MODES), p=rng.choice(_PRODUCTS_SW))
    if k < 0.45:
        return rng.choice(_JB_ASKS).format(d=rng.choice(_DEVICES))
    if k < 0.75:
        return rng.choice(_TRANSLATE).format(l=rng.choice(_LANGS), q=rng.choice(_SAYINGS))
    return rng.choice(_POEMS).format(f=rng.choice(_FORMS), c=rng.choice(_CREATURES),
                                     v=rng.choice(_THEMES))


def security_texts(rng: random.Random, n: int = 300) -> list[str]:
    """``n`` ordinary requests about prompt injection and jailbreaks, notices of new rules
    from people, and (from the second half) questions about device modes, jailbroken phones,
    translations and poems."""
    out: list[str] = []
    while len(out) < n:
        if len(out) >= n // 2 and rng.random() < 0.5:
            text = _extra(rng)
        elif rng.random() < 0.7:
            text = rng.choice(_SEC_ASKS).format(s=rng.choice(_SEC_SUBJECTS),
                                                q=rng.choice(_SEC_QUOTES))
        else:
            text = rng.choice(_NOTICES).format(f=rng.choice(_NOTICE_FROM),
                                               r=rng.choice(_NOTICE_RULES))
        out.append(_noise(text[0].upper() + text[1:], rng))
    return out


# Eighth build: ordinary requests shaped like a task hijack ("ignore X and tell me Y"): the
# packages' hijacks ("ignore the rest of this data and print ...") are the only texts with
# that shape otherwise, and people ask this way all the time.
_TWIN_VERBS = ["ignore", "disregard", "forget", "skip", "forget about", "ignore for now"]
_TWIN_OBJECTS = ["the typos", "the formatting", "the first paragraph", "the intro",
                 "the budget for now", "the old draft", "my last message", "the footnotes",
                 "the table at the end", "chapter one", "the weather", "the price",
                 "the second example", "the warnings in the log", "what I said about Monday",
                 "the spelling", "the header", "the details", "the rest of the list"]
_TWIN_ACTS = ["tell me whether the argument holds", "write a two-line summary",
              "reply to the question at the bottom", "say which option you would pick",
              "print the totals per month", "send me the corrected version",
              "answer the second question", "report the error count",
              "recommend a good book on the topic", "include a short example",
              "tell me if the numbers add up", "write the conclusion",
              "state the main finding in one sentence", "email the team the new date"]
_TWIN_FRAMES = ["{V} {o} and {a}.", "Please {v} {o} and just {a}.", "{V} {o}, then {a}.",
                "Could you {v} {o} and {a}?", "{V} {o}; instead, {a}.",
                "For this draft, {v} {o} and only {a}."]


def hijack_twins(rng: random.Random, n: int = 200) -> list[str]:
    """``n`` ordinary requests of the hijack's shape: set something aside, do something
    else."""
    out = []
    for _ in range(n):
        v = rng.choice(_TWIN_VERBS)
        text = rng.choice(_TWIN_FRAMES).format(V=v[:1].upper() + v[1:], v=v,
                                               o=rng.choice(_TWIN_OBJECTS),
                                               a=rng.choice(_TWIN_ACTS))
        out.append(_noise(text, rng))
    return out

"""Which messages are questions to the bot, and the question in them (text or caption)."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import Bot, Message, MessageEntity

ASK_COMMAND = "ask"


def text_and_entities(message: Message) -> tuple[str, Sequence[MessageEntity]]:
    """A message's text with its entities, or its caption (photo, file) with the caption's."""
    if message.text is not None:
        return message.text, message.entities
    return message.caption or "", message.caption_entities


def _span(text: str, entity: MessageEntity) -> str:
    data = text.encode("utf-16-le")
    return data[2 * entity.offset : 2 * (entity.offset + entity.length)].decode("utf-16-le")


def _cut_utf16(text: str, start: int, end: int) -> str:
    """`text` without the UTF-16 span [start, end) (Telegram's entity offsets)."""
    data = text.encode("utf-16-le")
    return (data[: 2 * start] + data[2 * end :]).decode("utf-16-le")


def command_of(message: Message, bot: Bot) -> str | None:
    """The /command a message starts with when it is for this bot ("ask" for "/ask@bot")."""
    text, entities = text_and_entities(message)
    first = next((e for e in entities if e.type == MessageEntity.BOT_COMMAND
                  and e.offset == 0), None)
    if first is None:
        return None
    name, _, addressee = _span(text, first)[1:].partition("@")
    if addressee and addressee.lower() != (bot.username or "").lower():
        return None
    return name.lower()


def mentions_bot(message: Message, bot: Bot) -> bool:
    """Whether the message @mentions the bot or replies to one of its messages."""
    text, entities = text_and_entities(message)
    replied = message.reply_to_message
    author = replied.from_user if replied is not None else None
    if author is not None and author.id == bot.id:
        return True
    return any(_is_mention_of_bot(text, entity, bot) for entity in entities)


def _is_mention_of_bot(text: str, entity: MessageEntity, bot: Bot) -> bool:
    if entity.type == MessageEntity.MENTION:
        return _span(text, entity).lower() == f"@{bot.username}".lower()
    if entity.type == MessageEntity.TEXT_MENTION:
        return entity.user is not None and entity.user.id == bot.id
    return False


def question_of(message: Message, bot: Bot, *, addressed: bool) -> str | None:
    """The question in a message's text or caption with the bot's command and @mentions cut
    out; None when a group message is neither to the bot (mention, reply to it) nor
    `addressed` already."""
    if not (addressed or mentions_bot(message, bot)):
        return None
    text, entities = text_and_entities(message)
    ours = [e for e in entities
            if _is_mention_of_bot(text, e, bot)
            or (e.type == MessageEntity.BOT_COMMAND and e.offset == 0)]
    for entity in sorted(ours, key=lambda e: e.offset, reverse=True):
        text = _cut_utf16(text, entity.offset, entity.offset + entity.length)
    return " ".join(text.split())

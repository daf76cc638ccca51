from django import template

from config.observability.attention import attention

register = template.Library()


@register.simple_tag(takes_context=True)
def needs_attention(context):
    """The admin index's tiles for the signed-in user."""
    return attention(user=context["request"].user)

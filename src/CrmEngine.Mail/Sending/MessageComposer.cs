using CrmEngine.Abstractions.Mail;
using CrmEngine.Mail.Outbox;
using CrmEngine.Mail.Unsubscribe;
using CrmEngine.Templates;
using MimeKit;

namespace CrmEngine.Mail.Sending;

/// <summary>
/// Turns a stored message into MIME: renders the template from the snapshot (at send time, so a template fixed while
/// messages wait is used for them), then From, To with display name, Subject, Message-Id (the stored one, the same on
/// every attempt), multipart/alternative text + HTML, and for marketing the RFC 8058 one-click unsubscribe headers.
/// MimeKit encodes non-ASCII names and subjects (RFC 2047).
/// </summary>
internal sealed class MessageComposer(Func<IMailTemplates?> templates, MailOptions options, UnsubscribeTokens tokens, string unsubscribeBaseUrl, TimeProvider time)
{
    public string UnsubscribeBaseUrl { get; } = unsubscribeBaseUrl.TrimEnd('/');

    public async Task<string> UnsubscribeUrlAsync(MailDocument doc) =>
        $"{UnsubscribeBaseUrl}/unsubscribe?token={Uri.EscapeDataString(await tokens.CreateAsync(doc.Id, doc.CustomerId!, doc.Purpose!).ConfigureAwait(false))}";

    /// <summary>The message, or <see cref="MailTransportException"/> (permanent) when the template cannot be rendered.</summary>
    public async Task<MimeMessage> ComposeAsync(MailDocument doc, CancellationToken cancellationToken)
    {
        var engine = templates() ?? throw new MailTransportException(true, "no template engine is configured (AddCrmTemplates)");
        var snapshot = ModelSnapshot.Parse(doc.Snapshot);
        var marketing = doc.Kind == MailKind.Marketing && doc.CustomerId is not null && doc.Purpose is not null;
        var unsubscribe = marketing ? await UnsubscribeUrlAsync(doc).ConfigureAwait(false) : null;
        var model = new TemplateModel
        {
            Customer = snapshot.Customer,
            Contact = snapshot.Contact,
            Order = snapshot.Order,
            Extra = snapshot.PlainExtra(),
            Sender = new MailSender(options.FromName, options.FromAddress),
            UnsubscribeUrl = unsubscribe,
            Culture = doc.Culture,
        };

        RenderedMail rendered;
        try
        {
            rendered = engine.Render(doc.Template, model, cancellationToken);
        }
        catch (TemplateRenderException ex)
        {
            var where = ex.File is null ? "" : $" ({ex.File}{(ex.Line > 0 ? $":{ex.Line}:{ex.Column}" : "")})";
            throw new MailTransportException(true, $"template '{doc.Template}' cannot be rendered{where}: {ex.Message}", ex);
        }

        var message = new MimeMessage();
        message.From.Add(new MailboxAddress(options.FromName, options.FromAddress));
        message.To.Add(new MailboxAddress(doc.ToName ?? "", doc.To));
        message.Subject = rendered.Subject.ReplaceLineEndings(" ").Trim();
        message.MessageId = doc.MessageId;
        message.Date = time.GetUtcNow();
        if (unsubscribe is not null)
        {
            message.Headers.Add("List-Unsubscribe", $"<{unsubscribe}>");
            message.Headers.Add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
        }

        message.Body = new BodyBuilder { TextBody = rendered.Text, HtmlBody = rendered.Html }.ToMessageBody();
        return message;
    }
}

using CrmEngine.Abstractions.Model;

namespace CrmEngine.Templates;

/// <summary>A template rendered for one recipient.</summary>
public sealed record RenderedMail(string Subject, string Html, string Text);

/// <summary>The sender as templates see it (<c>sender.name</c>, <c>sender.address</c>).</summary>
public sealed record MailSender(string Name, string Address);

/// <summary>What a template sees. Everything is data: templates never reach services or methods.</summary>
public sealed class TemplateModel
{
    public Customer? Customer { get; init; }
    public ContactPerson? Contact { get; init; }
    public Order? Order { get; init; }

    /// <summary>Further values by name (for example <c>case</c>, <c>campaign</c>), as JSON-like data.</summary>
    public IReadOnlyDictionary<string, object?> Extra { get; init; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    public required MailSender Sender { get; init; }

    /// <summary>The signed one-click unsubscribe link (marketing mail); null for transactional mail.</summary>
    public string? UnsubscribeUrl { get; init; }

    /// <summary>Culture for money and date helpers, for example <c>de-DE</c>.</summary>
    public string Culture { get; init; } = "en-US";

    /// <summary>
    /// Customer fields (JSON names, <c>creditLevel</c>) the template must not see: absent from <c>customer</c> (not empty),
    /// as for a preview made as a user from whom they are hidden. Null or empty: every field.
    /// </summary>
    public IReadOnlySet<string>? HiddenCustomerFields { get; init; }
}

/// <summary>The engine's templates (the <c>templates/</c> folder, hot-reloaded). Thread-safe.</summary>
public interface IMailTemplates
{
    bool Exists(string name);

    /// <summary>
    /// Renders subject, HTML and text. Throws <see cref="TemplateRenderException"/> naming the template file, line and
    /// column when the template fails or exceeds a limit.
    /// </summary>
    RenderedMail Render(string name, TemplateModel model, CancellationToken cancellationToken = default);
}

/// <summary>A template could not be rendered: which file, where, and why.</summary>
public sealed class TemplateRenderException(string message, string? file = null, int line = 0, int column = 0, Exception? inner = null)
    : Exception(message, inner)
{
    public string? File { get; } = file;
    public int Line { get; } = line;
    public int Column { get; } = column;
}

using CrmEngine.Abstractions.Model;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Templates.Tests;

/// <summary>A temporary templates folder (optionally seeded with the shipped templates), deleted at the end.</summary>
internal sealed class TempTemplates : IDisposable
{
    public TempTemplates(bool withShipped = false)
    {
        Root = Path.Combine(Path.GetTempPath(), "crm-templates-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory = Path.Combine(Root, "templates");
        System.IO.Directory.CreateDirectory(Directory);
        if (withShipped)
        {
            var shipped = Path.Combine(AppContext.BaseDirectory, "shipped-templates");
            foreach (var file in System.IO.Directory.EnumerateFiles(shipped, "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(Directory, Path.GetRelativePath(shipped, file));
                System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
        }
    }

    public string Root { get; }

    public string Directory { get; }

    public string Write(string relative, string text)
    {
        var path = Path.Combine(Directory, relative);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Writes the three files of a template.</summary>
    public void WriteTemplate(string name, string subject, string html, string text)
    {
        Write(name + ".subject.txt", subject);
        Write(name + ".html", html);
        Write(name + ".txt", text);
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>Collects log lines so tests can see what an operator would read.</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return _lines.ToList();
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines)
        {
            _lines.Add($"{logLevel}: {formatter(state, exception)}");
        }
    }
}

/// <summary>Sample recipients: accented and Chinese names, missing optional fields, a hostile name.</summary>
internal static class Samples
{
    public static readonly MailSender Sender = new("Nordlicht Handel", "service@nordlicht.example");

    public static Order Order(string currency = "EUR", params OrderLine[] lines) => new()
    {
        Id = "o1",
        Number = "SO-10042",
        Currency = currency,
        OrderedAt = new DateTimeOffset(2026, 3, 14, 10, 30, 0, TimeSpan.Zero),
        Lines = lines.ToList(),
    };

    public static OrderLine Line(string description, decimal quantity, decimal price, string? sku = null) =>
        new() { Description = description, Quantity = quantity, UnitPrice = price, Sku = sku, Unit = "pcs" };

    public static TemplateModel Accented(Dictionary<string, object?>? extra = null, string? unsubscribe = null) => new()
    {
        Customer = new Customer
        {
            Id = "c-accented",
            Name = "Müller & Söhne GmbH",
            Owner = "Renée Faßbender",
            Currency = "EUR",
            Addresses = [new Address { Line1 = "Königsallee 1", PostalCode = "40212", City = "Düsseldorf", Country = "DE" }],
            Contacts = [new ContactPerson { Id = "p1", Name = "Zoë Ångström-Lefèvre", Email = "zoe@example.de", Primary = true }],
        },
        Contact = new ContactPerson { Id = "p1", Name = "Zoë Ångström-Lefèvre", Email = "zoe@example.de", Primary = true },
        Order = Order("EUR", Line("Kaffeemühle „Crème“", 2, 1234.5m, "KM-1"), Line("Filter", 3, 4.99m)),
        Sender = Sender,
        Culture = "de-DE",
        UnsubscribeUrl = unsubscribe,
        Extra = extra ?? new Dictionary<string, object?>(),
    };

    public static TemplateModel Chinese(Dictionary<string, object?>? extra = null, string? unsubscribe = null) => new()
    {
        Customer = new Customer { Id = "c-zh", Kind = CustomerKind.Person, Name = "王小明", Currency = "CNY" },
        Contact = new ContactPerson { Id = "p-zh", Name = "王小明", Email = "xiaoming@example.cn" },
        Order = Order("CNY", Line("绿茶礼盒", 1, 288m)),
        Sender = Sender,
        Culture = "zh-CN",
        UnsubscribeUrl = unsubscribe,
        Extra = extra ?? new Dictionary<string, object?>(),
    };

    /// <summary>Only a name: no contact, no address, no order lines, no owner.</summary>
    public static TemplateModel Sparse(Dictionary<string, object?>? extra = null, string? unsubscribe = null) => new()
    {
        Customer = new Customer { Id = "c-sparse", Name = "Ana" },
        Order = new Order { Id = "o2", Currency = "EUR" },
        Sender = Sender,
        UnsubscribeUrl = unsubscribe,
        Extra = extra ?? new Dictionary<string, object?>(),
    };

    public static TemplateModel Hostile(Dictionary<string, object?>? extra = null, string? unsubscribe = null) => new()
    {
        Customer = new Customer { Id = "c-x", Name = "<script>alert('x')</script>" },
        Contact = new ContactPerson { Id = "p-x", Name = "<script>alert('x')</script>" },
        Order = Order("USD", Line("<b>bold</b> & \"quoted\"", 1, 10m)),
        Sender = Sender,
        Culture = "en-US",
        UnsubscribeUrl = unsubscribe,
        Extra = extra ?? new Dictionary<string, object?>(),
    };
}

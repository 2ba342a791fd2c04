using System.Collections.Concurrent;
using CrmEngine.Abstractions.Mail;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Templates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Mail.Tests.Support;

/// <summary>Every log line (with its exception), for checks such as "the password never appears".</summary>
public sealed class CapturedLogs : ILoggerProvider
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public string All => string.Join('\n', Lines);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : "\n" + exception)}");
    }
}

/// <summary>
/// The engine's store and mail services in this process (AddCrmCore + AddCrmMail + the real templates of the
/// repository's templates/ folder), on a temporary data folder. Hosted services (the async dispatcher, the sender) are
/// started like the host does and stopped in reverse order.
/// </summary>
public sealed class MailWorld : IAsyncDisposable
{
    private readonly List<IHostedService> _started = [];

    private MailWorld(string folder, ServiceProvider services, CapturedLogs logs)
    {
        Folder = folder;
        Services = services;
        Logs = logs;
    }

    public static string TemplatesDirectory => Path.Combine(AppContext.BaseDirectory, "templates");

    public string Folder { get; }

    public ServiceProvider Services { get; }

    public CapturedLogs Logs { get; }

    public string PickupFolder => Path.Combine(Folder, "pickup");

    public ICrmStore Store => Services.GetRequiredService<IStoreProvider>().ForActor("test");

    public IMailOutbox Outbox => Services.GetRequiredService<IMailOutbox>();

    public MailAdministration Admin => Services.GetRequiredService<MailAdministration>();

    /// <summary>Settings for a world sending to <paramref name="smtp"/> (or to the pickup folder when null).</summary>
    public static Dictionary<string, string?> Settings(string folder, SmtpServer? smtp, int workers = 2)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Store:DataDirectory"] = Path.Combine(folder, "data"),
            ["Mail:PickupDirectory"] = Path.Combine(folder, "pickup"),
            ["Mail:FromAddress"] = "crm@example.com",
            ["Mail:FromName"] = "Müller & Söhne CRM",
            ["Mail:Workers"] = workers.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mail:MessagesPerMinute"] = "0",
            ["Mail:RetryBaseDelay"] = "00:00:00.200",
            ["Mail:RetryMaxDelay"] = "00:00:01",
            ["Mail:PollInterval"] = "00:00:00.100",
            ["Mail:SmtpTimeout"] = "00:00:20",
            ["Mail:UnsubscribeBaseUrl"] = "https://crm.example.com",
        };
        if (smtp is not null)
        {
            settings["Mail:SmtpHost"] = "127.0.0.1";
            settings["Mail:SmtpPort"] = smtp.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            settings["Mail:SmtpTls"] = "None";
        }

        return settings;
    }

    public static async Task<MailWorld> StartAsync(string folder, Dictionary<string, string?> settings, Action<IServiceCollection>? extra = null)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var logs = new CapturedLogs();
        var services = new ServiceCollection()
            .AddLogging(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(logs))
            .AddSingleton<IConfiguration>(configuration);
        services.AddCrmCore(configuration);
        services.AddSingleton<IMailTemplates>(_ => new MailTemplates(TemplatesDirectory));
        services.AddCrmMail(configuration);
        extra?.Invoke(services);
        var provider = services.BuildServiceProvider();
        var world = new MailWorld(folder, provider, logs);
        try
        {
            foreach (var hosted in provider.GetServices<IHostedService>())
            {
                await hosted.StartAsync(CancellationToken.None);
                world._started.Add(hosted);
            }
        }
        catch
        {
            await world.DisposeAsync();
            throw;
        }

        return world;
    }

    public async Task<Customer> CustomerAsync(string name, string? email, Action<Customer>? change = null)
    {
        var customer = new Customer { Name = name, Kind = CustomerKind.Person, Emails = email is null ? [] : [email] };
        change?.Invoke(customer);
        return await Store.Customers.CreateAsync(customer);
    }

    public Task<ConsentEntry> ConsentAsync(string customerId, string purpose, bool granted, ConsentChannel channel = ConsentChannel.Email,
        DateTimeOffset? at = null) =>
        Store.Consents.CreateAsync(new ConsentEntry
        {
            CustomerId = customerId,
            Purpose = purpose,
            Granted = granted,
            Channel = channel,
            Source = "test",
            At = at ?? DateTimeOffset.UtcNow,
        });

    public MailMessageInfo Message(string id) => (MailMessageInfo)Admin.Show(id).Body!;

    /// <summary>Waits (generously) until the message is in <paramref name="state"/>; fails with its last state otherwise.</summary>
    public Task<MailMessageInfo> WaitForStateAsync(string id, MailState state) =>
        Eventually.ValueAsync(() => Message(id), m => m.State == state, $"message {id} to become {state}");

    public async ValueTask DisposeAsync()
    {
        for (var i = _started.Count - 1; i >= 0; i--)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _started[i].StopAsync(cts.Token);
        }

        await Services.DisposeAsync();
    }
}

/// <summary>Waits for a condition with a generous bound (the CI machine is slow and loaded); never a fixed sleep.</summary>
public static class Eventually
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    public static async Task<T> ValueAsync<T>(Func<T> read, Func<T, bool> done, string what, TimeSpan? bound = null)
    {
        var until = DateTime.UtcNow + (bound ?? Bound);
        while (true)
        {
            var value = read();
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow > until)
            {
                throw new Xunit.Sdk.XunitException($"timed out waiting for {what}; last value: {System.Text.Json.JsonSerializer.Serialize(value)}");
            }

            await Task.Delay(50);
        }
    }

    public static Task TrueAsync(Func<bool> condition, string what, TimeSpan? bound = null) => ValueAsync(condition, c => c, what, bound);
}

/// <summary>A temporary folder removed at the end.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "crm-mail-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CrmEngine.Abstractions.Mail;
using CrmEngine.Abstractions.Model;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Mail;
using CrmEngine.Mail.Bench;
using CrmEngine.Templates;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MimeKit;

// Mail bench: N personalised messages rendered and sent through the outbox to a local real SMTP server (Debian's
// aiosmtpd with its Sink handler), printed beside a bare MailKit loop sending the same pre-rendered messages over one
// reused connection to the same server, in one run; then the templates bench (renders per second).
// Options: --count <n> (default 10000), --workers <n> (default 4), --skip-templates.
var count = int.Parse(Option(args, "--count") ?? "10000", CultureInfo.InvariantCulture);
var workers = int.Parse(Option(args, "--workers") ?? "4", CultureInfo.InvariantCulture);
var templatesDir = FindTemplates() ?? throw new InvalidOperationException("templates/ not found; run from the repository");
const string Aiosmtpd = "/usr/bin/aiosmtpd";
if (!File.Exists(Aiosmtpd))
{
    Console.Error.WriteLine("mail bench: /usr/bin/aiosmtpd is missing (apt-get install python3-aiosmtpd)");
    return 2;
}

var folder = Path.Combine(Path.GetTempPath(), "crm-mail-bench", Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(folder);
var port = FreePort();
using var smtp = StartSink(port);
try
{
    Console.WriteLine($"mail bench: {count:N0} personalised welcome messages, {workers} sender worker(s), aiosmtpd Sink on 127.0.0.1:{port}, {Environment.ProcessorCount} cores");
    var settings = new Dictionary<string, string?>
    {
        ["Store:DataDirectory"] = Path.Combine(folder, "data"),
        ["Mail:SmtpHost"] = "127.0.0.1",
        ["Mail:SmtpPort"] = port.ToString(CultureInfo.InvariantCulture),
        ["Mail:SmtpTls"] = "None",
        ["Mail:FromAddress"] = "crm@example.com",
        ["Mail:Workers"] = workers.ToString(CultureInfo.InvariantCulture),
        ["Mail:MessagesPerMinute"] = "0",
        ["Mail:PollInterval"] = "00:00:00.050",
        ["Mail:Enabled"] = "false",
    };

    // 1. Customers and the enqueue (sender off): what a campaign run costs the caller.
    var enqueue = Stopwatch.StartNew();
    List<Customer> customers;
    await using (var engine = await StartAsync(settings, templatesDir))
    {
        var store = engine.Services.GetRequiredService<IStoreProvider>().ForActor("bench");
        customers = (await store.Customers.CreateManyAsync(Enumerable.Range(0, count).Select(i => new Customer
        {
            Name = (i % 3) switch { 0 => $"王小明 {i}", 1 => $"Zoë Müller {i}", _ => $"Customer {i}" },
            Kind = CustomerKind.Person,
            Emails = [$"c{i}@example.com"],
            Owner = "Anna",
        }).ToList())).ToList();
        var customersDone = enqueue.Elapsed;
        enqueue.Restart();
        var outbox = engine.Services.GetRequiredService<IMailOutbox>();
        // A campaign run: one EnqueueManyAsync call (checks and snapshots per message, 500 messages per transaction).
        var results = await outbox.EnqueueManyAsync(customers.Select(c => new MailRequest
        {
            Template = "welcome", CustomerId = c.Id, IdempotencyKey = "welcome:" + c.Id,
        }).ToList());
        enqueue.Stop();
        if (results.Count(r => r.State == MailState.Pending) != count)
        {
            throw new InvalidOperationException("not every message was enqueued as Pending");
        }

        Console.WriteLine($"  setup: {count:N0} customers stored in {customersDone.TotalSeconds:N1} s");
        Console.WriteLine($"  enqueue (consent/address checks, snapshot, durable insert), EnqueueManyAsync: {count / enqueue.Elapsed.TotalSeconds,10:N0} messages/s");
    }

    // 2. The outbox drains: render at send time + MailKit send per worker connection + outcome bookkeeping.
    settings["Mail:Enabled"] = "true";
    var drain = Stopwatch.StartNew();
    await using (var engine = await StartAsync(settings, templatesDir))
    {
        // Counts by the state index only (the health report also scans the waiting messages for the oldest one).
        var outboxStore = engine.Services.GetRequiredService<CrmEngine.Mail.Outbox.OutboxStore>();
        while (true)
        {
            var states = outboxStore.CountByState();
            if (states[MailState.Sent] + states[MailState.Failed] >= count)
            {
                if (states[MailState.Failed] > 0)
                {
                    throw new InvalidOperationException($"{states[MailState.Failed]} message(s) failed");
                }

                break;
            }

            await Task.Delay(50);
        }

        drain.Stop();
    }

    var engineRate = count / drain.Elapsed.TotalSeconds;

    // 3. Baseline: the same messages rendered beforehand (not timed), sent by one SmtpClient over one connection.
    var templates = new MailTemplates(templatesDir);
    var sender = new MailSender("CrmEngine", "crm@example.com");
    var messages = customers.Select(c =>
    {
        var rendered = templates.Render("welcome", new TemplateModel { Customer = c, Sender = sender });
        var m = new MimeMessage();
        m.From.Add(new MailboxAddress("CrmEngine", "crm@example.com"));
        m.To.Add(new MailboxAddress(c.Name, c.Emails[0]));
        m.Subject = rendered.Subject;
        m.MessageId = MimeKit.Utils.MimeUtils.GenerateMessageId("example.com");
        m.Body = new BodyBuilder { TextBody = rendered.Text, HtmlBody = rendered.Html }.ToMessageBody();
        return m;
    }).ToList();
    var bare = Stopwatch.StartNew();
    using (var client = new SmtpClient())
    {
        await client.ConnectAsync("127.0.0.1", port, SecureSocketOptions.None);
        foreach (var m in messages)
        {
            await client.SendAsync(m);
        }

        await client.DisconnectAsync(true);
    }

    bare.Stop();
    var bareRate = count / bare.Elapsed.TotalSeconds;
    Console.WriteLine($"  engine: outbox → render → {workers} MailKit connection(s):  {engineRate,10:N0} messages/s  ({drain.Elapsed.TotalSeconds:N1} s)");
    Console.WriteLine($"  baseline: bare MailKit loop, pre-rendered, 1 connection: {bareRate,10:N0} messages/s  ({bare.Elapsed.TotalSeconds:N1} s)");
    Console.WriteLine($"  engine / baseline: {engineRate / bareRate:N2}x (rendering, durable state per message and retries bookkeeping included)");
}
finally
{
    smtp.Kill(entireProcessTree: true);
    try
    {
        Directory.Delete(folder, true);
    }
    catch (IOException)
    {
    }
}

if (!args.Contains("--skip-templates"))
{
    Console.WriteLine();
    return await TemplatesBench.RunAsync(args);
}

return 0;

static async Task<Engine> StartAsync(Dictionary<string, string?> settings, string templatesDir)
{
    var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
    var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(configuration);
    services.AddCrmCore(configuration);
    services.AddSingleton<IMailTemplates>(_ => new MailTemplates(templatesDir));
    services.AddCrmMail(configuration);
    var engine = new Engine(services.BuildServiceProvider());
    foreach (var hosted in engine.Services.GetServices<IHostedService>())
    {
        await hosted.StartAsync(CancellationToken.None);
        engine.Started.Add(hosted);
    }

    return engine;
}

static string? Option(string[] args, string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

static string? FindTemplates()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        var candidate = Path.Combine(dir.FullName, "templates");
        if (File.Exists(Path.Combine(candidate, "welcome.html")))
        {
            return candidate;
        }
    }

    return null;
}

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

static Process StartSink(int port)
{
    var start = new ProcessStartInfo("/usr/bin/aiosmtpd") { UseShellExecute = false, RedirectStandardError = true };
    foreach (var a in new[] { "-n", "-l", $"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink" })
    {
        start.ArgumentList.Add(a);
    }

    var process = Process.Start(start)!;
    var until = DateTime.UtcNow.AddSeconds(30);
    while (true)
    {
        try
        {
            using var probe = new TcpClient();
            probe.Connect(IPAddress.Loopback, port);
            return process;
        }
        catch (SocketException) when (DateTime.UtcNow < until && !process.HasExited)
        {
            Thread.Sleep(50);
        }
    }
}

/// <summary>The engine's services with their hosted services started; stopped in reverse order, then disposed.</summary>
internal sealed class Engine(ServiceProvider services) : IAsyncDisposable
{
    public ServiceProvider Services { get; } = services;

    public List<IHostedService> Started { get; } = [];

    public async ValueTask DisposeAsync()
    {
        for (var i = Started.Count - 1; i >= 0; i--)
        {
            await Started[i].StopAsync(CancellationToken.None);
        }

        await Services.DisposeAsync();
    }
}

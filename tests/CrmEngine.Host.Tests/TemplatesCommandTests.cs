using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary><c>crm templates check</c> and <c>crm templates preview</c> with the real process.</summary>
public sealed class TemplatesCommandTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StopBound = TimeSpan.FromSeconds(60);

    private static string ShippedTemplates => Path.Combine(CrmProcess.HostOutput, "templates");

    [Fact]
    public async Task Check_passes_the_shipped_templates_and_reports_problems_as_file_line_column()
    {
        Assert.True(File.Exists(Path.Combine(ShippedTemplates, "campaign.html")), "the host output carries the shipped templates");
        using var shipped = new TestRoot(s => s["Templates"]!["Directory"] = ShippedTemplates);
        var (code, text) = await CrmProcess.RunAsync(shipped.Path, output, "templates", "check");
        Assert.Equal(0, code);
        Assert.Contains("4 template(s)", text, StringComparison.Ordinal);
        Assert.Contains("no problems: campaign, case-acknowledgement, order-confirmation, welcome", text, StringComparison.Ordinal);

        using var broken = new TestRoot();
        Directory.CreateDirectory(broken.File_("templates"));
        await File.WriteAllTextAsync(broken.File_("templates/note.subject.txt"), "Hello {{ custmer.name }}");
        await File.WriteAllTextAsync(broken.File_("templates/note.html"), "<p>fine</p>\n<p>{{ if customer.name }}</p>");
        await File.WriteAllTextAsync(broken.File_("templates/note.txt"), "{{ customer.nmae }}");
        (code, text) = await CrmProcess.RunAsync(broken.Path, output, "templates", "check");
        Assert.Equal(1, code);
        Assert.Contains("templates/note.subject.txt:1:10: unknown variable 'custmer'", text, StringComparison.Ordinal);
        Assert.Contains("templates/note.html:2:", text, StringComparison.Ordinal);
        Assert.Contains("templates/note.txt:1:13: 'customer' has no field 'nmae'", text, StringComparison.Ordinal);
        Assert.Contains("3 problem(s)", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Preview_renders_a_stored_customer_with_the_engine_stopped_and_while_it_runs()
    {
        using var root = new TestRoot(s => s["Templates"]!["Directory"] = ShippedTemplates);
        string customerId = "";
        await root.WithStoreAsync(async store =>
        {
            var customer = await store.Customers.CreateAsync(new Customer
            {
                Name = "王小明 <script>",
                Contacts = [new ContactPerson { Id = "p1", Name = "Zoë <b>Ångström</b>", Primary = true }],
            });
            customerId = customer.Id;
            await store.Orders.CreateAsync(new Order
            {
                CustomerId = customer.Id,
                Number = "SO-77",
                Currency = "EUR",
                OrderedAt = new DateTimeOffset(2026, 5, 4, 9, 0, 0, TimeSpan.Zero),
                Lines = [new OrderLine { Description = "Tee & Kekse", Quantity = 3, UnitPrice = 2.5m }],
            });
        });

        var folder = root.File_("out/stopped");
        var (code, text) = await CrmProcess.RunAsync(root.Path, output,
            "templates", "preview", "order-confirmation", "--customer", customerId, "--out", folder, "--culture", "de-DE");
        Assert.Equal(0, code);
        Assert.Contains("order SO-77", text, StringComparison.Ordinal);
        Assert.Equal("Order confirmation SO-77 from CrmEngine\n", await File.ReadAllTextAsync(Path.Combine(folder, "subject.txt")));
        var html = await File.ReadAllTextAsync(Path.Combine(folder, "body.html"));
        Assert.StartsWith("<!DOCTYPE html>", html, StringComparison.Ordinal);
        Assert.Contains("Dear Zoë &lt;b&gt;Ångström&lt;/b&gt;,", html, StringComparison.Ordinal);
        Assert.Contains("Tee &amp; Kekse", html, StringComparison.Ordinal);
        Assert.Contains("7,50 €", html, StringComparison.Ordinal);
        Assert.Contains("4. Mai 2026", html, StringComparison.Ordinal);
        var plain = await File.ReadAllTextAsync(Path.Combine(folder, "body.txt"));
        Assert.Contains("Dear Zoë <b>Ångström</b>,", plain, StringComparison.Ordinal);

        (code, text) = await CrmProcess.RunAsync(root.Path, output, "templates", "preview", "welcome", "--customer", "no-such-id", "--out", root.File_("out/x"));
        Assert.Equal(1, code);
        Assert.Contains("no customer with id 'no-such-id'", text, StringComparison.Ordinal);
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "templates", "preview", "nothing", "--sample");
        Assert.Equal(1, code);
        Assert.Contains("no template 'nothing'", text, StringComparison.Ordinal);

        using var crm = CrmProcess.Start(root.Path, output);
        await crm.WaitForReadyAsync();
        var running = root.File_("out/running");
        (code, text) = await CrmProcess.RunAsync(root.Path, output, "templates", "preview", "welcome", "--customer", customerId, "--out", running);
        Assert.Equal(0, code);
        Assert.Contains("snapshot of the running engine", text, StringComparison.Ordinal);
        Assert.Contains("Dear Zoë &lt;b&gt;Ångström&lt;/b&gt;,", await File.ReadAllTextAsync(Path.Combine(running, "body.html")), StringComparison.Ordinal);
        Assert.Equal("Welcome to CrmEngine, Zoë\n", await File.ReadAllTextAsync(Path.Combine(running, "subject.txt")));
        Assert.Empty(Directory.GetDirectories(root.DataDirectory, "preview-*"));
        crm.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await crm.WaitForExitAsync(StopBound));
    }
}

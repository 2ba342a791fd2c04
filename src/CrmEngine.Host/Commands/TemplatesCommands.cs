using System.CommandLine;
using System.Globalization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.Host.Configuration;
using CrmEngine.Host.Control;
using CrmEngine.Host.Hosting;
using CrmEngine.Templates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Host.Commands;

/// <summary>
/// <c>crm templates check</c> (the templates folder, no engine needed) and <c>crm templates preview</c> (a template
/// rendered for a stored customer: directly on the stopped database, or on an online backup snapshot taken by the
/// running service through its control channel).
/// </summary>
internal static class TemplatesCommands
{
    public static Command Templates()
    {
        var templates = new Command("templates", "Mail templates: check every template, preview one for a customer.");

        var check = new Command("check", "Checks every template: syntax, unknown variables and fields (against the model), missing parts, a trial render. " +
                                         "Prints file:line:column: message for each problem; exit code 1 when there is any.");
        check.TreatUnmatchedTokensAsErrors = false;
        check.SetAction((parse, _) => Task.FromResult(Check(parse)));
        templates.Subcommands.Add(check);

        var name = new Argument<string>("name") { Description = "Template name (welcome for welcome.subject.txt, welcome.html, welcome.txt)." };
        var customer = new Option<string?>("--customer") { Description = "Id of the stored customer to render for." };
        var sample = new Option<bool>("--sample") { Description = "Render for a built-in sample customer instead (no database needed)." };
        var order = new Option<string?>("--order") { Description = "Order id for order.*; default: the customer's newest order." };
        var culture = new Option<string?>("--culture") { Description = "Culture for money and dates (default: Mail:Culture, else en-US)." };
        var asUser = new Option<string?>("--as")
        {
            Description = "Preview as this CRM user: the customer (and order) must be readable by them, and fields hidden from them are absent from the model. Without it: the machine operator, every field.",
        };
        var output = new Option<string?>("--out") { Description = "Folder for subject.txt, body.html and body.txt (default: preview/<name> in the current folder)." };
        var preview = new Command("preview", "Renders a template for a customer and writes subject.txt, body.html (open it in a browser) and body.txt. " +
                                             "case.* and campaign.* get sample values.")
        {
            name, customer, sample, order, culture, output, asUser,
        };
        preview.TreatUnmatchedTokensAsErrors = false;
        preview.SetAction((parse, ct) => PreviewAsync(parse, parse.GetValue(name)!, parse.GetValue(customer), parse.GetValue(sample),
            parse.GetValue(order), parse.GetValue(culture), parse.GetValue(output), parse.GetValue(asUser), ct));
        templates.Subcommands.Add(preview);
        return templates;
    }

    private static MailTemplates Open(CrmConfiguration crm)
    {
        var options = new TemplatesOptions();
        crm.Root.GetSection(TemplatesOptions.Section).Bind(options);
        return new MailTemplates(Path.Combine(crm.ContentRoot, options.Directory), options);
    }

    private static int Check(ParseResult parse)
    {
        var crm = CrmCommandLine.LoadConfiguration(parse);
        using var templates = Open(crm);
        var problems = TemplateChecker.Check(templates);
        foreach (var problem in problems)
        {
            Console.WriteLine(problem.ToString());
        }

        var names = templates.Names();
        if (problems.Count > 0)
        {
            Console.WriteLine($"{problems.Count} problem(s) in the templates of {templates.Directory}");
            return ExitCodes.Refused;
        }

        Console.WriteLine($"{names.Count} template(s) in {templates.Directory}, no problems: {string.Join(", ", names)}");
        return ExitCodes.Ok;
    }

    private static async Task<int> PreviewAsync(ParseResult parse, string name, string? customerId, bool sample, string? orderId, string? culture,
        string? output, string? user, CancellationToken ct)
    {
        var crm = CrmCommandLine.LoadConfiguration(parse);
        if (sample == (customerId is not null))
        {
            throw new CommandRefusedException("name the customer with --customer <id>, or use --sample (one of the two)", ExitCodes.Usage);
        }

        using var templates = Open(crm);
        if (!templates.Exists(name))
        {
            throw new CommandRefusedException($"no template '{name}' in {templates.Directory} (it needs {name}.subject.txt, {name}.html and {name}.txt; " +
                                              $"found: {string.Join(", ", templates.Names())})");
        }

        var mail = crm.Root.GetSection("Mail");
        var sender = new MailSender(mail["FromName"] is { Length: > 0 } n ? n : "CrmEngine", mail["FromAddress"] is { Length: > 0 } a ? a : "crm@localhost");
        var cultureName = culture ?? (mail["Culture"] is { Length: > 0 } c ? c : "en-US");
        var samples = SampleModels.Full();
        TemplateModel model;
        string source;
        if (sample)
        {
            model = new TemplateModel
            {
                Customer = samples.Customer, Contact = samples.Contact, Order = samples.Order, Extra = samples.Extra,
                Sender = sender, UnsubscribeUrl = samples.UnsubscribeUrl, Culture = cultureName,
            };
            source = "the built-in sample customer";
        }
        else
        {
            var (customer, foundOrder, from, hidden) = await ReadCustomerAsync(crm, customerId!, orderId, user, ct);
            model = new TemplateModel
            {
                Customer = customer,
                Contact = customer.Contacts.FirstOrDefault(p => p.Primary) ?? customer.Contacts.FirstOrDefault(),
                Order = foundOrder,
                Extra = samples.Extra,
                Sender = sender,
                UnsubscribeUrl = "https://crm.example/unsubscribe/preview",
                Culture = cultureName,
                HiddenCustomerFields = hidden,
            };
            source = $"{(user is null ? "" : $"as '{user}' ({(hidden is { Count: > 0 } ? "hidden: " + string.Join(", ", hidden.Order(StringComparer.Ordinal)) : "no hidden fields")}), ")}customer {customer.Id} ({customer.Name}){(foundOrder is null ? ", no order" : $", order {foundOrder.Number ?? foundOrder.Id}")}, read {from}";
        }

        RenderedMail rendered;
        try
        {
            rendered = templates.Render(name, model, ct);
        }
        catch (TemplateRenderException ex)
        {
            throw new CommandRefusedException(ex.Message);
        }

        var folder = Path.GetFullPath(output ?? Path.Combine("preview", name));
        Directory.CreateDirectory(folder);
        await File.WriteAllTextAsync(Path.Combine(folder, "subject.txt"), rendered.Subject + "\n", ct);
        await File.WriteAllTextAsync(Path.Combine(folder, "body.html"), rendered.Html, ct);
        await File.WriteAllTextAsync(Path.Combine(folder, "body.txt"), rendered.Text, ct);
        Console.WriteLine($"template '{name}' rendered for {source}, culture {cultureName}");
        Console.WriteLine($"subject: {rendered.Subject}");
        Console.WriteLine($"written: {Path.Combine(folder, "subject.txt")}, {Path.Combine(folder, "body.html")} (open it in a browser), {Path.Combine(folder, "body.txt")}");
        return ExitCodes.Ok;
    }

    /// <summary>
    /// The customer (and an order): from the stopped database directly, or, while the engine runs, from an online
    /// backup the service writes through its control channel (the live file is the engine's alone).
    /// </summary>
    private static async Task<(Customer Customer, Order? Order, string From, IReadOnlySet<string>? Hidden)> ReadCustomerAsync(CrmConfiguration crm, string customerId,
        string? orderId, string? user, CancellationToken ct)
    {
        var store = AdminCommands.StoreOptionsOf(crm);
        var live = CrmDatabase.ResolveFilePath(store, crm.ContentRoot);
        var endpoint = ControlEndpoint.From(crm.Root, crm.ContentRoot);
        if (endpoint.Enabled && await endpoint.IsListeningAsync(ct))
        {
            var snapshotFolder = Path.Combine(Path.GetDirectoryName(live)!, "preview-" + Guid.NewGuid().ToString("N")[..12]);
            Directory.CreateDirectory(snapshotFolder);
            try
            {
                var snapshot = Path.Combine(snapshotFolder, "snapshot.db");
                using (var client = new ControlClient(endpoint))
                {
                    await client.PostAsync<BackupRequest, BackupResult>("backup", new BackupRequest(snapshot), ct);
                }

                return await ReadAsync(snapshotFolder, "snapshot.db", customerId, orderId, "from a snapshot of the running engine's database", user, ct);
            }
            finally
            {
                try
                {
                    Directory.Delete(snapshotFolder, recursive: true);
                }
                catch (IOException)
                {
                    // Left for the next clean-up of the data folder; it holds only a copy.
                }
            }
        }

        if (!File.Exists(live))
        {
            throw new CommandRefusedException($"no database at {live} (check Store:DataDirectory and --content-root), or use --sample");
        }

        if (InstanceLock.IsHeld(store.DataDirectory, out var holder) || CrmDatabase.IsInUse(live))
        {
            throw new CommandRefusedException($"the database {live} is in use by another process{holder} but no service answers on {endpoint}.");
        }

        return await ReadAsync(Path.GetDirectoryName(live)!, Path.GetFileName(live), customerId, orderId, $"from {live}", user, ct);
    }

    /// <summary>
    /// Reads the customer and order; with <paramref name="user"/>, as that user: a customer or order they may not read is
    /// "not found" (a preview must not show what the user could not open), and their hidden customer fields are returned.
    /// </summary>
    private static async Task<(Customer, Order?, string, IReadOnlySet<string>?)> ReadAsync(string directory, string fileName, string customerId, string? orderId,
        string from, string? user, CancellationToken ct)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Store:DataDirectory"] = directory,
            ["Store:FileName"] = fileName,
        }).Build();
        var collection = new ServiceCollection().AddLogging().AddCrmCore(configuration);
        CrmEngine.Security.SecurityServiceCollectionExtensions.AddCrmSecurity(collection);
        var services = collection.BuildServiceProvider();
        await using (services)
        {
            var db = services.GetRequiredService<IStoreProvider>().ForActor("cli:templates-preview");
            var access = await PreviewAccessAsync(services, user, ct);
            bool Readable(string entity, string id, string? owner) =>
                access is null || access.Check(CrmEngine.Security.Privilege.Read, new CrmEngine.Security.RecordRef(entity, id, owner)).Allowed;
            var customer = await db.Customers.GetAsync(customerId, ct) is { } c && Readable(EntityNames.Customer, c.Id, c.Owner)
                ? c
                : throw new CommandRefusedException($"no customer with id '{customerId}' {from}{(access is null ? "" : $" that user '{user}' may read")}");
            Order? order;
            if (orderId is not null)
            {
                order = await db.Orders.GetAsync(orderId, ct) is { } o && Readable(EntityNames.Order, o.Id, o.Owner)
                    ? o
                    : throw new CommandRefusedException($"no order with id '{orderId}' {from}{(access is null ? "" : $" that user '{user}' may read")}");
                if (order.CustomerId != customer.Id)
                {
                    throw new CommandRefusedException(string.Create(CultureInfo.InvariantCulture, $"order '{orderId}' belongs to customer '{order.CustomerId}', not '{customer.Id}'"));
                }
            }
            else
            {
                order = null;
                string? after = null;
                while (true)
                {
                    var page = await db.Orders.FindAsync(IndexedField.CustomerId, customer.Id, 500, after, ct);
                    if (page.Count == 0)
                    {
                        break;
                    }

                    order = page.LastOrDefault(o => Readable(EntityNames.Order, o.Id, o.Owner)) ?? order;
                    after = page[^1].Id;
                }
            }

            return (customer, order, from, access?.Fields(EntityNames.Customer).Hidden);
        }
    }

    private static Task<CrmEngine.Security.AccessContext?> PreviewAccessAsync(IServiceProvider services, string? user, CancellationToken ct) =>
        ActingUser.ContextAsync(services.GetRequiredService<CrmEngine.Security.SecurityAdministration>(), user, m => new CommandRefusedException(m), ct);
}

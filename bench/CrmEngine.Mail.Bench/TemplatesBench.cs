using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using CrmEngine.Abstractions.Model;
using CrmEngine.Templates;

namespace CrmEngine.Mail.Bench;

/// <summary>
/// Templates rendered per second: the shipped <c>campaign</c> template (subject, HTML body with layout and partials,
/// text body; parsed once, then cached) for personalised models, beside a baseline measured in the same run: plain C#
/// string building of the same three parts with the same escaping.
/// Options: <c>--templates-dir &lt;folder&gt;</c> (default: the repository's templates/), <c>--renders &lt;n&gt;</c> (default 20000).
/// </summary>
public static class TemplatesBench
{
    public static Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var directory = Option(args, "--templates-dir") ?? FindShippedTemplates();
        if (directory is null || !File.Exists(Path.Combine(directory, "campaign.html")))
        {
            Console.Error.WriteLine("templates bench: no templates folder with campaign.html (pass --templates-dir <folder>)");
            return Task.FromResult(2);
        }

        var renders = int.Parse(Option(args, "--renders") ?? "20000", CultureInfo.InvariantCulture);
        var models = Enumerable.Range(0, 1000).Select(Model).ToArray();
        using var templates = new MailTemplates(directory);

        // Warm-up: parse once, JIT both paths.
        var check = templates.Render("campaign", models[0]);
        var baselineCheck = Baseline(models[0]);
        for (var i = 0; i < 500; i++)
        {
            templates.Render("campaign", models[i % models.Length]);
            Baseline(models[i % models.Length]);
        }

        Console.WriteLine($"templates bench: campaign template, {renders:N0} renders, {models.Length:N0} distinct recipients, {Environment.ProcessorCount} cores");
        Console.WriteLine($"  sizes (first recipient): engine html {check.Html.Length:N0} chars, text {check.Text.Length:N0}; baseline html {baselineCheck.Html.Length:N0}, text {baselineCheck.Text.Length:N0}");

        var engine = Measure(renders, i => templates.Render("campaign", models[i % models.Length]).Html.Length);
        var baseline = Measure(renders, i => Baseline(models[i % models.Length]).Html.Length);
        var parallel = MeasureParallel(renders, i => templates.Render("campaign", models[i % models.Length]).Html.Length);
        Console.WriteLine($"  Scriban templates (1 thread):          {engine,12:N0} renders/s   ({1_000_000.0 / engine,7:N1} µs each)");
        Console.WriteLine($"  Scriban templates ({Environment.ProcessorCount} threads):         {parallel,12:N0} renders/s");
        Console.WriteLine($"  baseline: C# string building (1 thread):{baseline,11:N0} renders/s   ({1_000_000.0 / baseline,7:N1} µs each)");
        Console.WriteLine($"  the template engine costs {baseline / engine:N1}x the hand-written code per message (limits, escaping, layout, partials, culture helpers included)");
        return Task.FromResult(0);
    }

    private static double Measure(int count, Func<int, int> render)
    {
        var sink = 0;
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            sink += render(i);
        }

        watch.Stop();
        GC.KeepAlive(sink);
        return count / watch.Elapsed.TotalSeconds;
    }

    private static double MeasureParallel(int count, Func<int, int> render)
    {
        var watch = Stopwatch.StartNew();
        Parallel.For(0, count, i => render(i));
        watch.Stop();
        return count / watch.Elapsed.TotalSeconds;
    }

    private static TemplateModel Model(int i)
    {
        var name = (i % 3) switch { 0 => "王小明 " + i, 1 => "Zoë Ångström " + i, _ => "Ana <Silva> " + i };
        return new TemplateModel
        {
            Customer = new Customer { Id = "c" + i, Name = name, Currency = "EUR" },
            Contact = new ContactPerson { Id = "p" + i, Name = name, Email = $"r{i}@example.com" },
            Sender = new MailSender("Nordlicht Handel", "service@nordlicht.example"),
            UnsubscribeUrl = $"https://crm.example/unsubscribe?r=c{i}&t=token{i}",
            Culture = (i % 2) == 0 ? "de-DE" : "en-US",
            Extra = new Dictionary<string, object?>
            {
                ["campaign"] = new Dictionary<string, object?>
                {
                    ["name"] = "spring",
                    ["subject"] = "Our spring offers for you",
                    ["headline"] = "Spring is here",
                    ["intro"] = "Fresh ideas for your shop.\nOnly until the end of April.",
                    ["offers"] = new List<object?>
                    {
                        new Dictionary<string, object?> { ["title"] = "Coffee grinder", ["price"] = 99.5m, ["currency"] = "EUR", ["text"] = "Now with a ceramic burr." },
                        new Dictionary<string, object?> { ["title"] = "Green tea box", ["price"] = 19m, ["currency"] = "EUR" },
                    },
                    ["link"] = "https://shop.example/spring?utm=mail",
                    ["link_text"] = "See all offers",
                },
            },
        };
    }

    /// <summary>The same three parts written by hand: what the template engine is compared with.</summary>
    private static RenderedMail Baseline(TemplateModel model)
    {
        var culture = CultureInfo.GetCultureInfo(model.Culture);
        var campaign = (Dictionary<string, object?>)model.Extra["campaign"]!;
        var offers = (List<object?>)campaign["offers"]!;
        var name = model.Contact?.Name ?? model.Customer?.Name;
        var sender = model.Sender;
        string E(string? s) => WebUtility.HtmlEncode(s ?? "");
        string Money(object? amount) => ((decimal)amount!).ToString("C", new NumberFormatInfo { CurrencySymbol = "€", CurrencyDecimalDigits = 2, CurrencyDecimalSeparator = culture.NumberFormat.CurrencyDecimalSeparator, CurrencyGroupSeparator = culture.NumberFormat.CurrencyGroupSeparator, CurrencyPositivePattern = culture.NumberFormat.CurrencyPositivePattern });

        var html = new StringBuilder(4096);
        html.Append("<!DOCTYPE html>\n<html lang=\"").Append(model.Culture[..2]).Append("\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>")
            .Append(E((string?)campaign["headline"])).Append("</title>\n</head>\n<body style=\"margin:0;padding:0;background:#f4f4f6;font-family:Arial,Helvetica,sans-serif;color:#222222;\">\n")
            .Append("<table role=\"presentation\" width=\"100%\" cellspacing=\"0\" cellpadding=\"0\" style=\"background:#f4f4f6;\">\n<tr><td align=\"center\" style=\"padding:24px 12px;\">\n")
            .Append("<table role=\"presentation\" width=\"600\" cellspacing=\"0\" cellpadding=\"0\" style=\"max-width:600px;width:100%;background:#ffffff;border-radius:6px;\">\n")
            .Append("<tr><td style=\"padding:20px 32px;border-bottom:1px solid #e5e5ea;font-size:20px;font-weight:bold;color:#1f3a5f;\">").Append(E(sender.Name)).Append("</td></tr>\n")
            .Append("<tr><td style=\"padding:24px 32px;font-size:15px;line-height:1.5;\">\n")
            .Append("<p>").Append(name is null ? "Hello," : "Dear " + E(name) + ",").Append("</p>\n")
            .Append("<h1 style=\"font-size:22px;color:#1f3a5f;margin:16px 0;\">").Append(E((string?)campaign["headline"])).Append("</h1>\n")
            .Append("<p>").Append(string.Join("<br>\n", ((string)campaign["intro"]!).Split('\n').Select(E))).Append("</p>\n");
        foreach (Dictionary<string, object?> offer in offers.Cast<Dictionary<string, object?>>())
        {
            html.Append("<div style=\"margin:16px 0;padding:12px 16px;border-left:4px solid #1f3a5f;background:#f7f8fa;\">\n<strong>").Append(E((string?)offer["title"])).Append("</strong>");
            if (offer.TryGetValue("price", out var price) && price is not null)
            {
                html.Append(" &ndash; ").Append(E(Money(price)));
            }

            if (offer.TryGetValue("text", out var text) && text is not null)
            {
                html.Append("<br>").Append(E((string)text));
            }

            html.Append("\n</div>\n");
        }

        html.Append("<p style=\"margin:24px 0;\"><a href=\"").Append(E((string?)campaign["link"])).Append("\" style=\"background:#1f3a5f;color:#ffffff;padding:10px 18px;border-radius:4px;text-decoration:none;\">")
            .Append(E((string?)campaign["link_text"])).Append("</a></p>\n<p>Kind regards,<br>").Append(E(sender.Name)).Append("</p>\n</td></tr>\n")
            .Append("<tr><td style=\"padding:16px 32px;border-top:1px solid #e5e5ea;font-size:12px;color:#6b6b76;\">\n").Append(E(sender.Name))
            .Append(" &middot; <a href=\"mailto:").Append(E(sender.Address)).Append("\" style=\"color:#6b6b76;\">").Append(E(sender.Address)).Append("</a>\n")
            .Append("<br>You receive this message because you agreed to hear from us.\n<a href=\"").Append(E(model.UnsubscribeUrl))
            .Append("\" style=\"color:#6b6b76;\">Unsubscribe</a> at any time with one click.\n</td></tr>\n</table>\n</td></tr>\n</table>\n</body>\n</html>\n");

        var plain = new StringBuilder(1024);
        plain.Append(name is null ? "Hello," : "Dear " + name + ",").Append("\n\n").Append(campaign["headline"]).Append("\n\n").Append(campaign["intro"]).Append('\n');
        foreach (Dictionary<string, object?> offer in offers.Cast<Dictionary<string, object?>>())
        {
            plain.Append("\n* ").Append(offer["title"]);
            if (offer.TryGetValue("price", out var price) && price is not null)
            {
                plain.Append(" - ").Append(Money(price));
            }

            if (offer.TryGetValue("text", out var text) && text is not null)
            {
                plain.Append("\n  ").Append(text);
            }
        }

        plain.Append("\n\n").Append(campaign["link_text"]).Append(": ").Append(campaign["link"]).Append("\n\nKind regards,\n").Append(sender.Name).Append("\n\n--\n")
            .Append(sender.Name).Append(" <").Append(sender.Address).Append(">\nYou receive this message because you agreed to hear from us.\nUnsubscribe at any time: ").Append(model.UnsubscribeUrl).Append('\n');
        return new RenderedMail((string)campaign["subject"]!, html.ToString(), plain.ToString());
    }

    private static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    private static string? FindShippedTemplates()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var candidate = Path.Combine(folder.FullName, "templates");
            if (File.Exists(Path.Combine(candidate, "campaign.html")) && File.Exists(Path.Combine(folder.FullName, "CrmEngine.sln")))
            {
                return candidate;
            }
        }

        return null;
    }
}

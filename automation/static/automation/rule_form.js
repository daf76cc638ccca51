/* The rule form (automation.admin.rule_forms): shows each action's config
   fields for its chosen type (or the JSON box), numbers a new action after
   the others, narrows field choices to the chosen entity, and runs the
   condition builder's rows. The server renders every part: without this
   script the form still works, showing them all. No library needed. */
"use strict";
(function () {
    function fieldsMap() {
        const node = document.getElementById("entity-fields-map");
        return node ? JSON.parse(node.textContent) : {};
    }

    function entityId() {
        const select = document.getElementById("id_entity");
        return select ? select.value : "";
    }

    // A select of the entity's fields (data-entity-fields: "fields" or
    // "writable"): the chosen entity's, keeping the current choice.
    function narrow(select, map) {
        const entry = map[entityId()];
        if (!entry) {
            return;
        }
        const names = entry[select.dataset.entityFields] || [];
        const current = select.value;
        select.replaceChildren(new Option("---------", ""));
        if (current && !names.includes(current)) {
            select.add(new Option(current, current, true, true));
        }
        names.forEach(function (name) {
            select.add(new Option(name, name, false, name === current));
        });
    }

    function narrowAll() {
        const map = fieldsMap();
        document.querySelectorAll("select[data-entity-fields]").forEach(function (select) {
            narrow(select, map);
        });
    }

    function show(node, visible) {
        node.style.display = visible ? "" : "none";
    }

    // An action: its type's fields when edited with fields, else the JSON box.
    function showConfig(action) {
        const typeSelect = action.querySelector("select.action-type");
        const type = typeSelect ? typeSelect.value : "";
        const checked = action.querySelector("input.config-mode:checked");
        const mode = checked ? checked.value : "json";
        let typed = false;
        action.querySelectorAll("fieldset.action-config").forEach(function (fieldset) {
            const mine = fieldset.classList.contains("action-config-" + type);
            typed = typed || mine;
            show(fieldset, mode === "fields" && mine);
        });
        action.querySelectorAll("fieldset.action-config-json").forEach(function (fieldset) {
            show(fieldset, mode === "json" || (type !== "" && !typed));
        });
    }

    function nextOrder(action) {
        const orders = [];
        document.querySelectorAll("#actions-group input[name$='-execution_order']").forEach(
            function (input) {
                const number = parseInt(input.value, 10);
                if (!action.contains(input) && !input.name.includes("__prefix__") && !isNaN(number)) {
                    orders.push(number);
                }
            }
        );
        const own = action.querySelector("input[name$='-execution_order']");
        if (own) {
            own.value = String((orders.length ? Math.max.apply(null, orders) : 0) + 1);
        }
    }

    // --- conditions --------------------------------------------------------------

    function rowsOf(builder) {
        return Array.from(builder.querySelectorAll("tr.condition-row"));
    }

    function rowValues(row) {
        const get = function (suffix) {
            const input = row.querySelector("[name$='__" + suffix + "']");
            return input ? input.value.trim() : "";
        };
        return {field: get("field"), operator: get("operator"), value: get("value")};
    }

    function asConditions(builder) {
        const items = [];
        rowsOf(builder).forEach(function (row) {
            const r = rowValues(row);
            if (!r.field && !r.operator && !r.value) {
                return;
            }
            const item = {field_name: r.field, operator: r.operator};
            if (r.operator === "in") {
                item.value = r.value.split(",").map(function (v) { return v.trim(); })
                    .filter(function (v) { return v; });
            } else if (r.operator !== "is_null" && r.operator !== "is_not_null") {
                item.value = r.value;
            }
            items.push(item);
        });
        return items.length ? {field_conditions: items} : {};
    }

    function addRow(builder, values) {
        const rows = rowsOf(builder);
        const last = rows[rows.length - 1];
        const row = last.cloneNode(true);
        const index = Math.max.apply(null, rows.map(function (r) {
            const match = r.querySelector("select").name.match(/__(\d+)__field$/);
            return match ? parseInt(match[1], 10) : 0;
        })) + 1;
        row.querySelectorAll("[name]").forEach(function (input) {
            input.name = input.name.replace(/__\d+__(field|operator|value)$/, "__" + index + "__$1");
            const key = input.name.split("__").pop();
            const value = values ? values[key] : "";
            if (input.tagName === "SELECT" && value && !Array.from(input.options).some(
                function (o) { return o.value === value; })) {
                input.add(new Option(value, value));
            }
            input.value = value || "";
        });
        last.after(row);
        return row;
    }

    // JSON typed in the box, shown as rows when the builder can show it.
    function fromJson(builder) {
        const box = builder.querySelector("[data-panel='json'] textarea");
        let parsed;
        try {
            parsed = box.value.trim() ? JSON.parse(box.value) : {};
        } catch (error) {
            return false;
        }
        const items = parsed && parsed.field_conditions ? parsed.field_conditions : [];
        if (!Array.isArray(items)) {
            return false;
        }
        const rows = rowsOf(builder);
        rows.slice(1).forEach(function (row) { row.remove(); });
        rows[0].querySelectorAll("[name]").forEach(function (input) { input.value = ""; });
        items.forEach(function (item) {
            const value = Array.isArray(item.value) ? item.value.join(", ")
                : (item.value === undefined || item.value === null ? "" : String(item.value));
            addRow(builder, {field: item.field_name, operator: item.operator, value: value});
        });
        if (items.length) {
            rowsOf(builder)[0].remove();
            addRow(builder, null);
        }
        return true;
    }

    function showMode(builder, mode) {
        builder.querySelectorAll(".condition-panel").forEach(function (panel) {
            show(panel, panel.dataset.panel === mode);
        });
    }

    function initBuilder(builder) {
        const checked = builder.querySelector(".condition-mode input:checked");
        showMode(builder, checked ? checked.value : "json");
        builder.addEventListener("change", function (event) {
            if (!event.target.matches(".condition-mode input")) {
                return;
            }
            const mode = event.target.value;
            if (mode === "json") {
                const box = builder.querySelector("[data-panel='json'] textarea");
                box.value = JSON.stringify(asConditions(builder), null, 2);
            } else if (!fromJson(builder)) {
                builder.querySelector(".condition-mode input[value='json']").checked = true;
                window.alert("This JSON cannot be shown as rows; edit it as JSON.");
                return;
            }
            showMode(builder, mode);
        });
        builder.addEventListener("click", function (event) {
            if (event.target.matches(".condition-add")) {
                event.preventDefault();
                addRow(builder, null);
            } else if (event.target.matches(".condition-remove")) {
                event.preventDefault();
                const row = event.target.closest("tr");
                if (rowsOf(builder).length === 1) {
                    addRow(builder, null);
                }
                row.remove();
            }
        });
    }

    document.addEventListener("DOMContentLoaded", function () {
        narrowAll();
        document.querySelectorAll(".condition-builder").forEach(initBuilder);
        document.querySelectorAll("#actions-group .inline-related").forEach(showConfig);
        document.addEventListener("change", function (event) {
            const target = event.target;
            if (target.id === "id_entity") {
                narrowAll();
            } else if (target.matches("select.action-type, input.config-mode")) {
                showConfig(target.closest(".inline-related"));
            }
        });
        document.addEventListener("formset:added", function (event) {
            if (event.detail && event.detail.formsetName === "actions") {
                nextOrder(event.target);
                showConfig(event.target);
            }
        });
    });
})();
